"""Site devices whose `modbus.profile` names no firmware profile, or one of another kind;
chargers whose profile has no device-side failsafe."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from hubgate.config.model import SiteConfig
from hubgate.profiles.loader import close_names, load_named, load_profile, profile_files
from hubgate.profiles.model import DeviceKind, Profile
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


def failsafe_warnings(config: SiteConfig, folder: Path | None = None) -> list[str]:
    """One line per Modbus charger whose profile has no device-side failsafe: when hubgate
    stops, it keeps charging at its last setpoint."""
    warnings = []
    profiles: dict[str, Profile] = {}
    for index, charger in enumerate(config.chargers):
        if charger.modbus is None:
            continue
        name = charger.modbus.profile
        if name not in profiles:
            profiles[name] = load_named(name, folder)
        failsafe = profiles[name].failsafe
        if not failsafe.present:
            warnings.append(
                f"chargers[{index}] '{charger.id}' (profile {name}): no device-side failsafe, "
                f"it keeps its last setpoint when hubgate stops ({failsafe.reason})"
            )
    return warnings
