"""Where a site's Modbus devices meet their firmware profiles: a `modbus.profile` that names
no profile, one of another kind or one the link cannot reach (`profile_problems`); the
unit, TCP port and serial line settings a site leaves out, from the profile's
`[transport]` (`with_transport_defaults`); chargers whose profile has no device-side
failsafe."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from hubgate.config.model import SiteConfig
from hubgate.profiles.loader import close_names, load_named, load_profile, profile_files
from hubgate.profiles.model import DeviceKind, Profile, Quantity
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


def _modbus_tables(data: Mapping[str, Any]) -> Iterator[tuple[Loc, Any]]:
    """Every device's `modbus` table with its location."""
    for table in _LISTS:
        entries = data.get(table)
        for index, entry in enumerate(entries if isinstance(entries, list) else []):
            modbus = entry.get("modbus") if isinstance(entry, Mapping) else None
            if isinstance(modbus, Mapping):
                yield (table, index, "modbus"), modbus
    for table in _SINGLES:
        entry = data.get(table)
        modbus = entry.get("modbus") if isinstance(entry, Mapping) else None
        if isinstance(modbus, Mapping):
            yield (table, "modbus"), modbus


def _endpoints(data: Mapping[str, Any]) -> Iterator[tuple[Loc, object]]:
    for loc, modbus in _modbus_tables(data):
        yield (*loc, "profile"), modbus.get("profile")


def _profiles(data: Mapping[str, Any], folder: Path | None) -> dict[str, Profile | None]:
    """The profiles the site's Modbus tables name (None: missing or broken)."""
    try:
        known = profile_files(folder)
    except ConfigError:
        return {}
    found: dict[str, Profile | None] = {}
    for _, name in _endpoints(data):
        if isinstance(name, str) and name not in found:
            try:
                found[name] = load_profile(known[name]) if name in known else None
            except ConfigError:
                found[name] = None
    return found


def with_transport_defaults(data: Mapping[str, Any], folder: Path | None = None) -> Any:
    """A copy of site data in which each Modbus table that leaves them out has its profile's
    `[transport]` `unit`, `tcp_port` (as `port`, for a device on Modbus TCP itself) and
    factory serial line settings (`baud`, `parity`, `stop_bits`)."""
    data = copy.deepcopy(dict(data))
    profiles = _profiles(data, folder)
    for _, modbus in _modbus_tables(data):
        name = modbus.get("profile")
        profile = profiles.get(name) if isinstance(name, str) else None
        if profile is None:
            continue
        transport = profile.transport
        modbus.setdefault("unit", transport.unit)
        if "host" in modbus and not modbus.get("rtu_over_tcp") and "tcp" in transport.link:
            modbus.setdefault("port", transport.tcp_port)
        line = modbus.get("serial")
        if isinstance(line, dict) and transport.serial is not None:
            for key, value in transport.serial.model_dump().items():
                line.setdefault(key, value)
    return data


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
    return problems + _link_problems(data, folder) + _heartbeat_problems(data, folder)


def _link_problems(data: Mapping[str, Any], folder: Path | None) -> list[tuple[Loc, str]]:
    """Modbus tables that reach a Modbus-TCP-only device (`[transport] link = 'tcp'`) over
    a serial line or an RTU-over-TCP gateway."""
    profiles = _profiles(data, folder)
    problems: list[tuple[Loc, str]] = []
    for loc, modbus in _modbus_tables(data):
        name = modbus.get("profile")
        profile = profiles.get(name) if isinstance(name, str) else None
        if profile is None or profile.transport.link != "tcp":
            continue
        for key, way in (("serial", "a serial line"), ("rtu_over_tcp", "RTU over TCP")):
            if modbus.get(key):
                problems.append(
                    (
                        (*loc, key),
                        f"profile '{name}' is reached over Modbus TCP only ([transport] link ="
                        f" 'tcp'), not {way}: give its host (and port) instead",
                    )
                )
    return problems


def _heartbeat_problems(data: Mapping[str, Any], folder: Path | None) -> list[tuple[Loc, str]]:
    """A grid-operator heartbeat timeout for a box whose profile reads no heartbeat."""
    operator = data.get("grid_operator")
    if not isinstance(operator, Mapping) or "heartbeat_timeout_s" not in operator:
        return []
    modbus = operator.get("modbus")
    name = modbus.get("profile") if isinstance(modbus, Mapping) else None
    beat = Quantity.GRID_LIMIT_HEARTBEAT
    if isinstance(name, str):
        profile = _profiles(data, folder).get(name)
        if profile is None or beat in profile.fields:  # a missing profile is told above
            return []
        what = f"profile '{name}' reads no {beat}"
    else:
        what = "the grid operator has no Modbus box"
    return [
        (
            ("grid_operator", "heartbeat_timeout_s"),
            f"{what}: drop heartbeat_timeout_s, or use a profile with a [fields.{beat}] counter",
        )
    ]


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
