"""`hubgate probe`: which firmware profile fits a live Modbus device, over TCP or RTU.

    hubgate probe 10.0.0.5                      # the profiles' common unit ids
    hubgate probe 10.0.0.5:1502 --units 1-10,200 --json
    hubgate probe --rtu /dev/ttyUSB0 --baud 19200 --parity E --units 1-16
    hubgate probe 10.0.0.9:4001 --rtu-over-tcp --units 1-32   # behind a serial gateway

For every unit id that answers, prints what the device says about itself (FC43/14 device
identification, SunSpec common model) and the profiles whose identity check passed, best
first, with their evidence; exit code 1 when nothing matches or the device cannot be
reached, 2 for bad options.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import trio

from hubgate.cli.common import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK
from hubgate.cli.modbus_cmd import add_link_arguments, check_link, open_master
from hubgate.devices.probe import ProbeResult, UnitProbe, common_units, parse_units, probe
from hubgate.profiles import load_all


def register(parser: argparse.ArgumentParser) -> None:
    """Add the `probe` arguments."""
    add_link_arguments(parser)
    units = parser.add_mutually_exclusive_group()
    units.add_argument(
        "--units",
        metavar="IDS",
        help="unit ids to scan, e.g. 1-10,200 (default: every profile's default unit id)",
    )
    units.add_argument("--unit", type=int, default=None, help="one unit id (same as --units N)")
    parser.add_argument("--dir", type=Path, default=None, help="profiles folder")
    parser.add_argument("--all", action="store_true", help="also list the profiles that failed")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=_probe)


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
    if (problem := check_link(args)) is not None:
        print(f"hubgate probe: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
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
        return EXIT_BAD_INPUT

    async def run() -> list[UnitProbe]:
        async with open_master(args) as master:
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
