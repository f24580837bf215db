"""The `hubgate` command line.

Exit codes: 0 ok, 1 runtime failure, 2 bad input or configuration. Each
command group lives in its own module with a `register(subparsers)` function.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from hubgate import __version__
from hubgate.cli import (
    bench_cmd,
    config_cmd,
    fleet_cmd,
    gateway_cmd,
    modbus_cmd,
    ocpp_cmd,
    probe_cmd,
    profiles_cmd,
    sim_cmd,
)
from hubgate.cli.common import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK
from hubgate.config import ConfigError
from hubgate.errors import HubgateError

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILURE", "EXIT_OK", "build_parser", "main"]

COMMAND_GROUPS = (
    config_cmd,
    sim_cmd,
    profiles_cmd,
    ocpp_cmd,
    modbus_cmd,
    probe_cmd,
    bench_cmd,
    gateway_cmd,
    fleet_cmd,
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every command group registered."""
    parser = argparse.ArgumentParser(
        prog="hubgate",
        description="Local energy-management gateway for EV charging hubs (OCPP and Modbus).",
    )
    parser.add_argument("--version", action="version", version=f"hubgate {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for group in COMMAND_GROUPS:
        group.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        print(f"{len(exc.problems)} problem(s) found", file=sys.stderr)
        return EXIT_BAD_INPUT
    except HubgateError as exc:
        print(f"hubgate: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_FAILURE
    return code
