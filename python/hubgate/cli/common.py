"""Pieces shared by every command group."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_BROKEN_PIPE = 141
"""Its reader stopped reading (`hubgate ... | head`): 128 + SIGPIPE, as a shell reports it."""

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def add_command(
    subparsers: Any, name: str, help_text: str, handler: Any
) -> argparse.ArgumentParser:
    """Add a sub-command whose `handler(args) -> int` runs it."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name, help=help_text, description=help_text
    )
    parser.set_defaults(handler=handler)
    return parser


def run_trio(main: Callable[[], Awaitable[object]]) -> int:
    """`trio.run(main)`; an OSError (a port it cannot take, a file it cannot read) ends it
    with one line and EXIT_FAILURE."""
    import trio

    failure: BaseException | None = None
    try:
        trio.run(main)
    except* OSError as group:
        failure = group
        while isinstance(failure, BaseExceptionGroup):  # nested nurseries
            failure = failure.exceptions[0]
    if failure is not None:
        print(f"hubgate: error: {failure}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def port_number(text: str) -> int:
    """A TCP port from the command line (0 picks a free one)."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65_535:
        raise argparse.ArgumentTypeError(f"give a port from 0 to 65535, got {text!r}")
    return port


LOG_FORMATS = ("text", "json")


def add_log_level(parser: argparse.ArgumentParser, default: str) -> None:
    """`--log-level` and `--log-format`, for `setup_logging`."""
    parser.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default=default,
        type=str.upper,
        help=f"what the log shows (default {default})",
    )
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default="text",
        help="text lines, or one JSON object per line (events with their fields)",
    )


EVENTS_LOGGER = "hubgate.events"
"""The operator's events (`hubgate.records.events`): shown from INFO up to `--log-level
WARNING`, so the default log tells the site's story; ERROR and CRITICAL quiet them too."""


def setup_logging(level: str, log_format: str = "text") -> None:
    """The process's logging: every line to stderr with its time and logger, as text or
    as one JSON object per line (`time`, `level`, `logger`, `message`, and an operator
    event's `event` object)."""
    if log_format == "json":
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        logging.basicConfig(level=level, handlers=[handler])
    else:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    numeric = logging.getLevelName(level)
    if numeric <= logging.WARNING:
        logging.getLogger(EVENTS_LOGGER).setLevel(min(numeric, logging.INFO))


class JsonFormatter(logging.Formatter):
    """One JSON object per log record; an operator event's fields under `event`."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        event = getattr(record, "event", None)
        if event is not None:
            line["event"] = event.model_dump(mode="json")
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line)
