"""Site devices whose `modbus.profile` names no firmware profile."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from hubgate.profiles.loader import close_names, profile_files
from hubgate.tomlcheck import ConfigError, Loc

_LISTS = ("chargers", "meters", "pv")
_SINGLES = ("battery", "grid_operator")


def _endpoints(data: Mapping[str, Any]) -> Iterator[tuple[Loc, object]]:
    for table in _LISTS:
        entries = data.get(table)
        for index, entry in enumerate(entries if isinstance(entries, list) else []):
            modbus = entry.get("modbus") if isinstance(entry, Mapping) else None
            if isinstance(modbus, Mapping):
                yield (table, index, "modbus", "profile"), modbus.get("profile")
    for table in _SINGLES:
        entry = data.get(table)
        modbus = entry.get("modbus") if isinstance(entry, Mapping) else None
        if isinstance(modbus, Mapping):
            yield (table, "modbus", "profile"), modbus.get("profile")


def profile_problems(data: Mapping[str, Any], folder: Path | None = None) -> list[tuple[Loc, str]]:
    """Profile names that do not exist, each with the closest existing names."""
    endpoints = list(_endpoints(data))
    if not endpoints:
        return []
    try:
        known = profile_files(folder)
    except ConfigError as exc:
        return [(loc, exc.problems[0].message) for loc, _ in endpoints[:1]]
    problems: list[tuple[Loc, str]] = []
    for loc, name in endpoints:
        if isinstance(name, str) and name not in known:
            close = close_names(name, folder)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            problems.append(
                (loc, f"no firmware profile '{name}'; {hint}see `hubgate profiles list`")
            )
    return problems
