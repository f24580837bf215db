"""`hubgate fleet status`: every site's state, read from the fleet's NATS cluster."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

import nats
from nats.js.api import Header

from hubgate.cli.common import EXIT_FAILURE, EXIT_OK
from hubgate.cluster.fleet import STATUS_SUBJECT

NO_RESPONDERS = "503"
"""The status of the message a NATS server sends to a request's inbox that nobody answers."""


def register(fleet: argparse.ArgumentParser) -> None:
    """Add the `fleet` commands."""
    commands = fleet.add_subparsers(title="fleet commands", metavar="COMMAND", required=True)
    status = commands.add_parser(
        "status",
        help="every site's state",
        description="Ask every gateway on the cluster for its site's state (docs/ha.md).",
    )
    status.add_argument("--server", required=True, metavar="URL", help="nats://host:port")
    status.add_argument(
        "--wait", type=float, default=1.0, metavar="S", help="seconds to collect answers (1)"
    )
    status.add_argument("--json", action="store_true", help="one JSON object per gateway")
    status.set_defaults(handler=_status)


async def _collect(server: str, wait_s: float) -> list[dict[str, Any]]:
    async def quiet(error: Exception) -> None:
        """nats-py's default prints each failed attempt; the failure is reported once."""

    try:
        client = await asyncio.wait_for(
            nats.connect(servers=[server], connect_timeout=3, error_cb=quiet), 5.0
        )
    except TimeoutError:
        raise OSError("no answer within 5 s") from None
    answers: list[dict[str, Any]] = []
    try:
        inbox = client.new_inbox()
        subscription = await client.subscribe(inbox)
        await client.publish(STATUS_SUBJECT, b"", reply=inbox)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while (left := deadline - loop.time()) > 0:
            try:
                msg = await subscription.next_msg(timeout=left)
            except nats.errors.TimeoutError:
                break
            if msg.headers and msg.headers.get(Header.STATUS) == NO_RESPONDERS:
                break  # the server's own answer: no gateway listens on the subject
            answers.append(json.loads(msg.data))
    finally:
        await client.close()
    return sorted(answers, key=lambda a: (str(a.get("site")), str(a.get("node"))))


def line(answer: dict[str, Any]) -> str:
    """One gateway's answer as a line."""
    grid = answer.get("grid_a")
    limit = answer.get("grid_limit_a")
    current = "-" if grid is None else "/".join(f"{a:.0f}" for a in grid)
    of = "" if limit is None else " of " + "/".join(f"{a:.0f}" for a in limit)
    return (
        f"{answer.get('site', '?'):<16} {answer.get('node', '?'):<10} {answer.get('role', '?'):<8}"
        f" cycle {answer.get('cycle', '-')}: grid {current}{of} A, "
        f"{answer.get('charging', 0)}/{answer.get('connectors', 0)} charging, "
        f"{answer.get('reachable', 0)}/{answer.get('devices', 0)} devices reachable"
    )


def _status(args: argparse.Namespace) -> int:
    try:
        answers = asyncio.run(_collect(args.server, args.wait))
    except (OSError, nats.errors.Error) as exc:
        print(f"hubgate fleet status: cannot reach {args.server}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    for answer in answers:
        print(json.dumps(answer) if args.json else line(answer))
    if not answers:
        print("no gateway answered", file=sys.stderr)
    return EXIT_OK
