"""Finding the line of a field in TOML text, for error messages.

`tomllib` gives values without positions, so the line is found by walking
the table headers and keys of the text. It understands the layout our
files use (tables, arrays of tables, `key = value` lines); for anything else
it gives the nearest enclosing line it found, or None.
"""

from __future__ import annotations

import re

Loc = tuple[str | int, ...]
"""A field path: table keys and array indexes, outermost first."""

_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\s\"]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+)\s*=")


def _headers(lines: list[str]) -> list[tuple[int, bool, str]]:
    """(line index, is array of tables, dotted name) for every table header."""
    found = []
    for index, line in enumerate(lines):
        match = _HEADER.match(line)
        if match:
            name = ".".join(part.strip().strip('"') for part in match.group(2).split("."))
            found.append((index, match.group(1) == "[[", name))
    return found


def _section_end(headers: list[tuple[int, bool, str]], start: int, name: str, last: int) -> int:
    """Line index where the table opened at `start` ends (its sub-tables included)."""
    return next((h[0] for h in headers if h[0] > start and not h[2].startswith(name + ".")), last)


def line_of(text: str, loc: Loc) -> int | None:
    """1-based line where the field at `loc` is written, or the nearest one found."""
    lines = text.splitlines()
    headers = _headers(lines)
    start, end = -1, len(lines)  # -1: the root table, before any header
    best: int | None = None
    prefix = ""
    i = 0
    while i < len(loc):
        part = loc[i]
        if isinstance(part, int):
            return best
        name = f"{prefix}.{part}" if prefix else part
        inside = [h for h in headers if start <= h[0] < end]
        following = loc[i + 1] if i + 1 < len(loc) else None
        if isinstance(following, int):
            tables = [h[0] for h in inside if h[1] and h[2] == name]
            if following < len(tables):
                start = tables[following]
                end = _section_end(headers, start, name, len(lines))
                best, prefix, i = start + 1, name, i + 2
                continue
        table = next((h[0] for h in inside if not h[1] and h[2] == name), None)
        if table is not None:
            start = table
            end = _section_end(headers, start, name, len(lines))
            best, prefix, i = start + 1, name, i + 1
            continue
        own_end = next((h[0] for h in headers if h[0] > start), end)
        for index in range(start + 1, own_end):
            match = _KEY.match(lines[index])
            if match and match.group(1) == part:
                return index + 1
        return best
    return best
