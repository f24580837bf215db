"""`hubgate bench`: measure this machine and print its capacity report."""

from __future__ import annotations

import argparse
import json
from typing import Any

from hubgate.cli.common import EXIT_OK, add_command


def register(subparsers: Any) -> None:
    """Add the `bench` command."""
    parser = add_command(
        subparsers,
        "bench",
        "measure this machine: codec and allocation speed, connectors per cycle, "
        "OCPP stations per core, against the peer libraries where installed",
        _bench,
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--quick", action="store_true", help="shorter runs (a few seconds)")


def _bench(args: argparse.Namespace) -> int:
    from hubgate.benchmarking.report import FULL, QUICK, render, run_bench

    report = run_bench(QUICK if args.quick else FULL)
    print(json.dumps(report, indent=2) if args.json else render(report))
    return EXIT_OK
