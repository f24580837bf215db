"""`hubgate config ...`: check a site file and print its tree; export the schema."""

from __future__ import annotations

import argparse
import json
import sys

from hubgate.cli.common import EXIT_OK, add_command
from hubgate.cli.examples_cmd import example_path
from hubgate.config import SiteConfig, load_site, render_tree
from hubgate.config.failsafe_load import failsafe_load_warnings
from hubgate.config.profile_refs import failsafe_warnings


def register(parser: argparse.ArgumentParser) -> None:
    """Add the `config` sub-commands."""
    commands = parser.add_subparsers(title="config commands", metavar="COMMAND", required=True)
    check = add_command(
        commands,
        "check",
        "validate a site file (listener ports, device addresses included) and print its topology",
        _check,
    )
    check.add_argument("site", help="site file (TOML), or a packaged example's name (small-4)")
    check.add_argument("--quiet", action="store_true", help="print nothing when the file is valid")
    check.add_argument(
        "--read-fallbacks",
        action="store_true",
        help="read the fallback current each Modbus charger's device holds (Alfen's safe "
        "current) and count it, instead of the most the device may hold",
    )
    add_command(commands, "schema", "print the site file's JSON Schema (for editors)", _schema)


def _check(args: argparse.Namespace) -> int:
    config = load_site(example_path(args.site, "sites"))
    if not args.quiet:
        print(render_tree(config))
    held: dict[str, float] = {}
    unread: list[str] = []
    if args.read_fallbacks:  # Trio and the Modbus masters only when asked
        import trio

        from hubgate.devices.held_fallbacks import read_held_fallbacks

        held, unread = trio.run(read_held_fallbacks, config)
    for warning in failsafe_warnings(config) + unread + failsafe_load_warnings(config, held=held):
        print(f"{args.site}: warning: {warning}", file=sys.stderr)
    return EXIT_OK


def _schema(_args: argparse.Namespace) -> int:
    print(json.dumps(SiteConfig.model_json_schema(), indent=2))
    return EXIT_OK
