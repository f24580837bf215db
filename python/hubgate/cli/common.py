"""Pieces shared by every command group."""

from __future__ import annotations

import argparse
from typing import Any

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2


def add_command(
    subparsers: Any, name: str, help_text: str, handler: Any
) -> argparse.ArgumentParser:
    """Add a sub-command whose `handler(args) -> int` runs it."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name, help=help_text, description=help_text
    )
    parser.set_defaults(handler=handler)
    return parser
