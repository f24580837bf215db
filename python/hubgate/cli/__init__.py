"""The `hubgate` command line.

Exit codes: 0 ok, 1 runtime failure, 2 bad input or configuration. Each command lives in a
module of this package whose registering function adds the command's arguments and handler
to its parser. `COMMANDS` names them, so that only the command being run is imported:
`hubgate --help` loads no command module, `hubgate config check` only the configuration.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NamedTuple

from hubgate import __version__
from hubgate._core import HubgateError
from hubgate.cli.common import EXIT_BAD_INPUT, EXIT_BROKEN_PIPE, EXIT_FAILURE, EXIT_OK

__all__ = ["COMMANDS", "EXIT_BAD_INPUT", "EXIT_FAILURE", "EXIT_OK", "build_parser", "main"]


class Command(NamedTuple):
    """A top-level command: its name, one-line help and where its arguments are added."""

    name: str
    help: str
    registers: str
    """`module:function` taking the command's parser."""

    def register(self, parser: argparse.ArgumentParser) -> None:
        """Import the command's module and let it add its arguments and handler."""
        module, function = self.registers.split(":")
        getattr(importlib.import_module(f"hubgate.cli.{module}"), function)(parser)


COMMANDS = (
    Command("run", "run the gateway for a site", "gateway_cmd:register_run"),
    Command(
        "demo",
        "the simulated 200-connector depot under the gateway's control",
        "gateway_cmd:register_demo",
    ),
    Command("config", "site configuration files: check, schema", "config_cmd:register"),
    Command(
        "examples", "the example sites and scenarios shipped with hubgate", "examples_cmd:register"
    ),
    Command(
        "sim", "simulate a site from a scenario file and report its safety", "sim_cmd:register"
    ),
    Command("ocpp", "OCPP charge points: the listener on its own", "ocpp_cmd:register"),
    Command(
        "auth",
        "the id tokens that may charge at a site without a CSMS ([authorization])",
        "auth_cmd:register",
    ),
    Command("modbus", "read and write registers of a Modbus device", "modbus_cmd:register"),
    Command(
        "probe",
        "identify a Modbus device (TCP or RTU) by trying every firmware profile on each unit id",
        "probe_cmd:register",
    ),
    Command("profiles", "firmware profiles of Modbus devices", "profiles_cmd:register"),
    Command(
        "bench",
        "measure this machine: codec and allocation speed, connectors per cycle, "
        "OCPP stations per core, against the peer libraries",
        "bench_cmd:register",
    ),
    Command("fleet", "sites on a NATS fleet cluster: status", "fleet_cmd:register"),
)


def _command_named(argv: Sequence[str]) -> str | None:
    """The command in `argv`: its first word that is not an option (the top level has only
    --help and --version, which take no value)."""
    return next((word for word in argv if not word.startswith("-")), None)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser; of the commands, only the one `argv` names is registered in full
    (every one when `argv` is None)."""
    parser = argparse.ArgumentParser(
        prog="hubgate",
        description="Local energy-management gateway for EV charging hubs (OCPP and Modbus).",
    )
    parser.add_argument("--version", action="version", version=f"hubgate {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    wanted = None if argv is None else _command_named(argv)
    for command in COMMANDS:
        sub = subparsers.add_parser(command.name, help=command.help, description=command.help)
        if argv is None or command.name == wanted:
            command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    words = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(words).parse_args(words)
    try:
        code: int = args.handler(args)
    except HubgateError as exc:
        from hubgate.tomlcheck import ConfigError  # loaded already if that is what was raised
        from hubgate.wording import counted

        if isinstance(exc, ConfigError):
            print(exc, file=sys.stderr)
            print(f"{counted(len(exc.problems), 'problem')} found", file=sys.stderr)
            return EXIT_BAD_INPUT
        print(f"hubgate: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_FAILURE
    except BrokenPipeError:  # e.g. `hubgate config check SITE | head`: no traceback
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's last flush goes nowhere
        return EXIT_BROKEN_PIPE
    return code
