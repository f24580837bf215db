"""`hubgate probe HOST[:PORT]`: which firmware profile fits a live Modbus TCP device.

    hubgate probe 10.0.0.5            # every profile, each on its own default unit id
    hubgate probe 10.0.0.5:1502 --unit 3 --json

Prints the matching profiles, best first, with the firmware the device
reported; exit code 1 when none matches or the device cannot be reached.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import trio

from hubgate.cli.common import EXIT_FAILURE, EXIT_OK
from hubgate.cli.modbus_cmd import split_target
from hubgate.devices.probe import ProbeResult, probe
from hubgate.modbus.tcp_master import open_tcp_master
from hubgate.profiles import load_all


def register(parser: argparse.ArgumentParser) -> None:
    """Add the `probe` arguments."""
    parser.add_argument("target", metavar="HOST[:PORT]", help="Modbus TCP device (port 502)")
    parser.add_argument(
        "--unit", type=int, default=None, help="unit id (default: each profile's own)"
    )
    parser.add_argument("--timeout", type=float, default=1.0, help="seconds per request")
    parser.add_argument("--dir", type=Path, default=None, help="profiles folder")
    parser.add_argument("--all", action="store_true", help="also list the profiles that failed")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=_probe)


def _line(result: ProbeResult) -> str:
    firmware = result.firmware
    where = {True: "in range", False: "OUT OF RANGE", None: "range unknown"}
    detail = f"firmware {firmware} ({where[result.firmware_in_range]})" if firmware else ""
    if not result.matched:
        detail = result.reason or ""
    readable = "" if not result.matched or result.fields_readable else " [fields not readable]"
    return f"{result.profile:32} {result.vendor} {result.model}{readable}  {detail}".rstrip()


def _probe(args: argparse.Namespace) -> int:
    profiles = load_all(args.dir)
    host, port = split_target(args.target)

    async def run() -> list[ProbeResult]:
        async with open_tcp_master(host, port, timeout_s=args.timeout, retries=0) as master:
            return await probe(master, args.unit, profiles.values())

    results = trio.run(run)
    matched = [r for r in results if r.matched]
    shown = results if args.all else matched
    if args.json:
        rows = [{**asdict(r), "firmware": r.firmware} for r in shown]
        print(json.dumps(rows, indent=2))
    else:
        for result in shown:
            print(("match  " if result.matched else "no     ") + _line(result))
    if not matched:
        print(f"hubgate probe: no profile matches {args.target}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK
