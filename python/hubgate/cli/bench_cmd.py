"""`hubgate bench`: measure this machine and print its capacity report."""

from __future__ import annotations

import argparse
import dataclasses
import json

from hubgate.cli.common import EXIT_OK, setup_logging

BENCH_SCENARIO = "depot-200-steady"


def register(parser: argparse.ArgumentParser) -> None:
    """Add the `bench` arguments."""
    parser.set_defaults(handler=_bench)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="shorter runs (one to two minutes instead of three to five)",
    )
    parser.add_argument(
        "--settle",
        type=_seconds,
        metavar="SECONDS",
        help="how long the site runs, every station connected, before the cycles are counted "
        "(default: 30; less measures the start's work too: docs/performance.md)",
    )
    parser.add_argument(
        "--cycles",
        type=_cycles,
        metavar="N",
        help="control cycles the end-to-end window counts (default: 120; 20 with --quick)",
    )
    parser.add_argument(
        "--scenario",
        default=BENCH_SCENARIO,
        help="the simulated site the gateway controls for the end-to-end cycle: a scenario "
        f"file, or a packaged example's name (default: {BENCH_SCENARIO})",
    )


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"give seconds, 0 or more, got {text!r}")
    return value


def _cycles(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"give a whole number of cycles, 1 or more, got {text!r}")
    return value


def _bench(args: argparse.Namespace) -> int:
    from hubgate.benchmarking.report import FULL, QUICK, render, run_bench
    from hubgate.cli.examples_cmd import example_path

    setup_logging("ERROR")  # the measured gateway's own events would drown the report
    settings = QUICK if args.quick else FULL
    if args.settle is not None:
        settings = dataclasses.replace(settings, settle_s=args.settle)
    if args.cycles is not None:
        settings = dataclasses.replace(settings, cycles=args.cycles)
    report = run_bench(settings, example_path(args.scenario, "scenarios"))
    print(json.dumps(report, indent=2) if args.json else render(report))
    return EXIT_OK
