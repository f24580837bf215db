"""`hubgate probe`: which firmware profile fits a live Modbus device, over TCP or RTU.

    hubgate probe 10.0.0.5                      # the profiles' common unit ids
    hubgate probe 10.0.0.5:1502 --units 1-10,200 --json
    hubgate probe --rtu /dev/ttyUSB0 --baud 19200 --parity E --units 1-16

For every unit id that answers, prints what the device says about itself (FC43/14 device
identification, SunSpec common model) and the profiles whose identity check passed, best
first, with their evidence; exit code 1 when nothing matches or the device cannot be
reached.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import trio

from hubgate.cli.common import EXIT_FAILURE, EXIT_OK
from hubgate.cli.modbus_cmd import split_target
from hubgate.config.model import Parity, SerialLine
from hubgate.devices.probe import ProbeResult, UnitProbe, common_units, parse_units, probe
from hubgate.modbus.master import Master
from hubgate.modbus.rtu_master import open_rtu_master
from hubgate.modbus.tcp_master import open_tcp_master
from hubgate.profiles import load_all


def register(subparsers: Any) -> None:
    """Add the `probe` command."""
    parser = subparsers.add_parser(
        "probe",
        help="identify a Modbus device (TCP or RTU) by trying every firmware profile",
        description="Identify a Modbus device by trying every firmware profile on each unit id.",
    )
    parser.add_argument(
        "target", metavar="HOST[:PORT]", nargs="?", help="Modbus TCP device (port 502)"
    )
    parser.add_argument("--rtu", metavar="DEVICE", help="serial device for Modbus RTU instead")
    parser.add_argument("--baud", type=int, default=9600, help="serial baud rate (default 9600)")
    parser.add_argument(
        "--parity", choices=[p.value for p in Parity], default="E", help="serial parity (default E)"
    )
    parser.add_argument("--stop-bits", type=int, choices=[1, 2], default=1, help="stop bits")
    units = parser.add_mutually_exclusive_group()
    units.add_argument(
        "--units",
        metavar="IDS",
        help="unit ids to scan, e.g. 1-10,200 (default: every profile's default unit id)",
    )
    units.add_argument("--unit", type=int, default=None, help="one unit id (same as --units N)")
    parser.add_argument("--timeout", type=float, default=1.0, help="seconds per request")
    parser.add_argument("--dir", type=Path, default=None, help="profiles folder")
    parser.add_argument("--all", action="store_true", help="also list the profiles that failed")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=_probe)


@asynccontextmanager
async def _open(args: argparse.Namespace) -> AsyncIterator[Master]:
    if args.rtu is not None:
        line = SerialLine(
            device=args.rtu, baud=args.baud, parity=Parity(args.parity), stop_bits=args.stop_bits
        )
        async with open_rtu_master(line, timeout_s=args.timeout, retries=0) as master:
            yield master
    else:
        host, port = split_target(args.target)
        async with open_tcp_master(host, port, timeout_s=args.timeout, retries=0) as master:
            yield master


def _line(result: ProbeResult) -> str:
    where = {True: "in range", False: "OUT OF RANGE", None: "range unknown"}
    read = ", ".join(f"{k} {v!r}" for k, v in result.read.items() if k != "marker")
    firmware = result.firmware
    if firmware is not None:
        read = read.replace(
            f"firmware {firmware!r}", f"firmware {firmware!r} ({where[result.firmware_in_range]})"
        )
    head = f"{'match' if result.matched else 'no':6} {result.profile:32} {result.vendor} {result.model}"
    if not result.matched:
        return f"{head}  {result.reason or ''}".rstrip()
    lines = [head + (f"  read: {read}" if read else "")]
    lines.append(f"{'':7}evidence: {'; '.join(result.evidence)}")
    return "\n".join(lines)


def _row(unit: UnitProbe, show_all: bool) -> dict[str, Any]:
    shown = unit.results if show_all else tuple(unit.matches)
    return {
        "unit": unit.unit,
        "answered": unit.answered,
        "identity": {"device_id": unit.identity.device_id, "sunspec": unit.identity.sunspec},
        "results": [
            {**asdict(r), "firmware": r.firmware, "evidence": list(r.evidence)} for r in shown
        ],
    }


def _probe(args: argparse.Namespace) -> int:
    if (args.target is None) == (args.rtu is None):
        print("hubgate probe: give HOST[:PORT] or --rtu DEVICE (one of them)", file=sys.stderr)
        return EXIT_FAILURE
    profiles = load_all(args.dir)
    try:
        units = (
            [args.unit]
            if args.unit is not None
            else parse_units(args.units)
            if args.units
            else common_units(profiles.values())
        )
    except ValueError as exc:
        print(f"hubgate probe: --units: {exc}", file=sys.stderr)
        return EXIT_FAILURE

    async def run() -> list[UnitProbe]:
        async with _open(args) as master:
            return await probe(master, units, profiles.values())

    scanned = trio.run(run)
    answered = [u for u in scanned if u.answered]
    if args.json:
        print(json.dumps([_row(u, args.all) for u in answered], indent=2))
    else:
        for unit in answered:
            print(f"unit {unit.unit}: {unit.identity.summary()}")
            for result in unit.results if args.all else unit.matches:
                print("  " + _line(result).replace("\n", "\n  "))
    where = args.rtu or args.target
    if not any(u.matches for u in answered):
        silent = [u.unit for u in scanned if not u.answered]
        hint = (
            f"units {', '.join(str(u.unit) for u in answered)} answered"
            if answered
            else "no unit answered"
        )
        if silent:
            hint += f"; silent: {', '.join(map(str, silent))} (try --units)"
        print(f"hubgate probe: no profile matches {where} ({hint})", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK
