"""Site devices whose `modbus.profile` names no firmware profile, or one of another kind."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from hubgate.profiles.loader import close_names, load_profile, profile_files
from hubgate.profiles.model import DeviceKind
from hubgate.tomlcheck import ConfigError, Loc

_LISTS = ("chargers", "meters", "pv")
_SINGLES = ("battery", "grid_operator")
_KINDS = {
    "chargers": {DeviceKind.CHARGER},
    "meters": {DeviceKind.METER},
    "pv": {DeviceKind.INVERTER, DeviceKind.BATTERY},
    "battery": {DeviceKind.BATTERY},
    "grid_operator": {DeviceKind.GRID_OPERATOR},
}
"""Profile kinds each site table accepts (a hybrid inverter is a battery that also has PV)."""


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
    """Profile names that do not exist (with the closest names) or are of the wrong kind."""
    endpoints = list(_endpoints(data))
    if not endpoints:
        return []
    try:
        known = profile_files(folder)
    except ConfigError as exc:
        return [(loc, exc.problems[0].message) for loc, _ in endpoints[:1]]
    problems: list[tuple[Loc, str]] = []
    kinds: dict[str, DeviceKind | None] = {}
    for loc, name in endpoints:
        if not isinstance(name, str):
            continue
        if name not in known:
            close = close_names(name, folder)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            problems.append(
                (loc, f"no firmware profile '{name}'; {hint}see `hubgate profiles list`")
            )
            continue
        if name not in kinds:
            try:
                kinds[name] = load_profile(known[name]).kind
            except ConfigError:
                kinds[name] = None
        kind = kinds[name]
        accepted = _KINDS[str(loc[0])]
        if kind is None:
            problems.append((loc, f"profile '{name}' is broken: run `hubgate profiles check`"))
        elif kind not in accepted:
            wanted = " or ".join(sorted(accepted))
            problems.append((loc, f"profile '{name}' describes a {kind}, not a {wanted}"))
    return problems
