"""`hubgate bench`: measure this machine and print its capacity report."""

from __future__ import annotations

import argparse
import json

from hubgate.cli.common import EXIT_OK


def register(parser: argparse.ArgumentParser) -> None:
    """Add the `bench` arguments."""
    parser.set_defaults(handler=_bench)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--quick", action="store_true", help="shorter runs (a few seconds)")


def _bench(args: argparse.Namespace) -> int:
    from hubgate.benchmarking.report import FULL, QUICK, render, run_bench

    report = run_bench(QUICK if args.quick else FULL)
    print(json.dumps(report, indent=2) if args.json else render(report))
    return EXIT_OK
