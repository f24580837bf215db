"""Who may charge at a site without a CSMS: the `[authorization]` table and its tokens file.

The site file holds the rule for unknown id tokens, the groups and the tokens an installer
writes there; `tokens_file` (TOML, `[[tokens]]` tables like the site file's) holds those that
`hubgate auth` and the API add and remove. `TokenBook` serves both: the verdict on a token for
the OCPP handlers, and changes written atomically to the tokens file under a lock, which a
running gateway reads again when it changes, so the command line and the API can be used side
by side. Token ids compare case-insensitively (OCPP CiString20 idTag, 2.0.1 idToken).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from hubgate.config.base import Strict
from hubgate.config.services import Authorization, AuthToken
from hubgate.tomlcheck import ConfigError, Loc, locate, read_toml, validation_problems

LOG = logging.getLogger("hubgate.config")

Status = Literal["Accepted", "Blocked", "Expired"]


class TokensFile(Strict):
    """The tokens file: the site's tokens managed by `hubgate auth` and the API."""

    tokens: list[AuthToken] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the site says about an id token; `status` None: it does not know the token."""

    status: Status | None
    group: str | None = None
    expires: datetime | None = None


@dataclass(frozen=True, slots=True)
class ListedToken:
    """A token and where it is defined: "site" (the site file) or "file" (the tokens file)."""

    token: AuthToken
    source: Literal["site", "file"]


def token_problems(
    tokens: Sequence[object], groups: Mapping[str, object], table: Loc
) -> list[tuple[Loc, str]]:
    """Duplicate ids and unknown groups among raw `[[tokens]]` entries at `table`."""
    problems: list[tuple[Loc, str]] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(tokens):
        if not isinstance(entry, Mapping):
            continue
        token_id, group = entry.get("id"), entry.get("group")
        if isinstance(token_id, str):
            key = token_id.casefold()
            if key in seen:
                problems.append(
                    ((*table, index, "id"), f"token {token_id!r} is listed twice (ids ignore case)")
                )
            seen[key] = index
        if isinstance(group, str) and group not in groups:
            problems.append(((*table, index, "group"), unknown_group(group, groups)))
    return problems


def unknown_group(group: str, groups: Iterable[str]) -> str:
    """What is wrong with a token of `group` when the site defines only `groups`."""
    known = ", ".join(sorted(groups)) or "none; add [authorization.groups.NAME] to the site file"
    return f"group {group!r} does not exist; groups: {known}"


def authorization_problems(data: Mapping[str, Any]) -> list[tuple[Loc, str]]:
    """The `[authorization]` table's cross-checks on raw site data."""
    table = data.get("authorization")
    if not isinstance(table, Mapping):
        return []
    problems: list[tuple[Loc, str]] = []
    if "csms" in data:
        problems.append(
            (
                ("authorization",),
                "with a [csms] the CSMS authorizes (its local list and cache work offline); "
                "remove [authorization] or [csms]",
            )
        )
    tokens = table.get("tokens")
    groups = table.get("groups")
    if isinstance(tokens, list):
        problems += token_problems(
            tokens, groups if isinstance(groups, Mapping) else {}, ("authorization", "tokens")
        )
    return problems


def _toml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a TOML basic string


def _toml_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def tokens_file_text(tokens: Sequence[AuthToken]) -> str:
    """The tokens file for `tokens`, as hubgate writes it."""
    lines = ["# The site's id tokens, managed by `hubgate auth` and the API (see [authorization])."]
    for token in tokens:
        lines += ["", "[[tokens]]", f"id = {_toml_string(token.id)}"]
        if token.group is not None:
            lines.append(f"group = {_toml_string(token.group)}")
        if token.expires is not None:
            lines.append(f"expires = {_toml_time(token.expires)}")
        if token.blocked:
            lines.append("blocked = true")
    return "\n".join(lines) + "\n"


class TokenBook:
    """The site's id tokens: the site file's and the tokens file's (see the module docstring)."""

    def __init__(self, config: Authorization) -> None:
        self.config = config
        self.path = None if config.tokens_file is None else Path(config.tokens_file)
        self._site = {t.id.casefold(): t for t in config.tokens}
        self._file: dict[str, AuthToken] = {}
        self._seen: tuple[int, int] | None = None
        if self.path is not None:
            self._file = self._read()
            self._seen = self._stamp()

    @property
    def accepts_unknown(self) -> bool:
        """Whether a token the site does not know may charge."""
        return self.config.unknown == "accept"

    def verdict(self, token_id: str, now: datetime) -> Verdict:
        """The site's verdict on a token at `now`: blocked (its own or its group's flag),
        expired (its own or its group's expiry), accepted, or unknown."""
        self._refresh()
        key = token_id.casefold()
        token = self._site.get(key) or self._file.get(key)
        if token is None:
            return Verdict(None)
        group = None if token.group is None else self.config.groups.get(token.group)
        expiries = [token.expires, None if group is None else group.expires]
        known = [moment for moment in expiries if moment is not None]
        expires = min(known) if known else None
        status: Status = "Accepted"
        if token.blocked or (group is not None and group.blocked):
            status = "Blocked"
        elif expires is not None and expires <= now:
            status = "Expired"
        return Verdict(status, token.group, expires)

    def listed(self) -> list[ListedToken]:
        """Every token, the site file's first."""
        self._refresh()
        return [ListedToken(t, "site") for t in self._site.values()] + [
            ListedToken(t, "file") for t in self._file.values()
        ]

    def put(self, token: AuthToken) -> None:
        """Add a token to the tokens file, or replace the one of its id there.

        ValueError: no tokens file, the site file defines that id, or its group does not exist.
        """
        key = token.id.casefold()
        if key in self._site:
            raise ValueError(f"token {token.id!r} is defined in the site file; change it there")
        if token.group is not None and token.group not in self.config.groups:
            raise ValueError(unknown_group(token.group, self.config.groups))
        with self._locked() as tokens:
            tokens[key] = token

    def remove(self, token_id: str) -> bool:
        """Remove a token from the tokens file; False when it is not there.

        ValueError: no tokens file, or the site file defines that id.
        """
        key = token_id.casefold()
        if key in self._site:
            raise ValueError(f"token {token_id!r} is defined in the site file; remove it there")
        with self._locked() as tokens:
            return tokens.pop(key, None) is not None

    @contextmanager
    def _locked(self) -> Iterator[dict[str, AuthToken]]:
        """The tokens file's tokens to change, read and written back under a lock."""
        path = self.path
        if path is None:
            raise ValueError("[authorization] has no tokens_file to keep changes in; add one")
        with open(path.with_name(path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            tokens = self._read()
            yield tokens
            temporary = path.with_name(path.name + ".new")
            with open(temporary, "w") as out:
                out.write(tokens_file_text(list(tokens.values())))
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
            self._file, self._seen = tokens, self._stamp()

    def _read(self) -> dict[str, AuthToken]:
        """The tokens file's tokens; ConfigError (located) when it is broken."""
        assert self.path is not None
        if not self.path.exists():
            return {}
        text, data = read_toml(self.path)
        found = validation_problems(TokensFile, data)
        raw = data.get("tokens")
        if isinstance(raw, list):
            found += token_problems(raw, self.config.groups, ("tokens",))
            found += [
                (("tokens", i, "id"), f"token {e['id']!r} is in the site file too; keep one")
                for i, e in enumerate(raw)
                if isinstance(e, Mapping)
                and isinstance(e.get("id"), str)
                and e["id"].casefold() in self._site
            ]
        if found:
            raise ConfigError(locate(str(self.path), text, found))
        return {t.id.casefold(): t for t in TokensFile.model_validate(data).tokens}

    def _stamp(self) -> tuple[int, int] | None:
        assert self.path is not None
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def _refresh(self) -> None:
        """Read the tokens file again when it changed (another process wrote it)."""
        if self.path is None or self._stamp() == self._seen:
            return
        stamp = self._stamp()
        try:
            self._file = self._read()
        except ConfigError as exc:
            LOG.error("%s: keeping the tokens read before:\n%s", self.path, exc)
        self._seen = stamp
