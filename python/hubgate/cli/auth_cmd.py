"""`hubgate auth ...`: the id tokens that may charge at a site without a CSMS.

The site file's `[authorization]` table holds the rule and the groups; `add` and `remove`
change its `tokens_file`, which a running gateway reads again when it changes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime

from hubgate.cli.common import EXIT_BAD_INPUT, EXIT_OK, add_command
from hubgate.config.loader import load_site
from hubgate.config.services import AuthToken
from hubgate.config.tokens import TokenBook


def register(parser: argparse.ArgumentParser) -> None:
    """Add the `auth` sub-commands."""
    commands = parser.add_subparsers(title="auth commands", metavar="COMMAND", required=True)
    listing = add_command(commands, "list", "every id token and what it gets now", _list)
    listing.add_argument("site", help="site file (TOML) with an [authorization] table")
    add = add_command(
        commands, "add", "add a token, or change one, in [authorization] tokens_file", _add
    )
    add.add_argument("site", help="site file (TOML) with an [authorization] table")
    add.add_argument("token", help="the idTag / idToken, e.g. an RFID card's UID")
    add.add_argument("--group", help="a group of [authorization.groups]")
    add.add_argument(
        "--expires",
        type=_moment,
        metavar="TIME",
        help="when it stops being accepted, ISO 8601 with an offset (2027-01-01T00:00:00Z)",
    )
    add.add_argument("--blocked", action="store_true", help="known, but may not charge")
    remove = add_command(commands, "remove", "remove a token from the tokens file", _remove)
    remove.add_argument("site", help="site file (TOML) with an [authorization] table")
    remove.add_argument("token", help="the idTag / idToken")


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give the time's offset (Z or +01:00): {text!r}")
    return moment


def _book(site: str) -> TokenBook | None:
    """The site's tokens; None (and a line on stderr) when it has no [authorization]."""
    config = load_site(site).authorization
    if config is None:
        print(
            f"hubgate: error: {site}: no [authorization] table; add one "
            '(unknown = "reject", tokens_file = "tokens.toml") to keep tokens',
            file=sys.stderr,
        )
        return None
    return TokenBook(config)


def _list(args: argparse.Namespace) -> int:
    book = _book(args.site)
    if book is None:
        return EXIT_BAD_INPUT
    now = datetime.now(UTC)
    rule = "accepted" if book.accepts_unknown else "refused"
    print(f"unknown tokens are {rule}")
    for listed in book.listed():
        token = listed.token
        verdict = book.verdict(token.id, now)
        expires = "" if verdict.expires is None else f", expires {verdict.expires.isoformat()}"
        group = "" if token.group is None else f" group {token.group}"
        print(f"{token.id}\t{verdict.status}{group}{expires}\t({listed.source})")
    return EXIT_OK


def _change(site: str, change: Callable[[TokenBook], str]) -> int:
    """Apply a change to the site's tokens file; print what it did, or why it could not."""
    book = _book(site)
    if book is None:
        return EXIT_BAD_INPUT
    try:
        print(change(book))
    except ValueError as exc:
        print(f"hubgate: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_OK


def _add(args: argparse.Namespace) -> int:
    def add(book: TokenBook) -> str:
        token = AuthToken(  # a ValidationError is a ValueError: reported by _change
            id=args.token, group=args.group, expires=args.expires, blocked=args.blocked
        )
        book.put(token)
        return f"{token.id} kept in {book.path}"

    return _change(args.site, add)


def _remove(args: argparse.Namespace) -> int:
    def remove(book: TokenBook) -> str:
        if not book.remove(args.token):
            raise ValueError(f"no token {args.token!r} in {book.path}")
        return f"{args.token} removed from {book.path}"

    return _change(args.site, remove)
