"""Checks of a schema-valid profile: units, overlaps, failsafe timing, references, sources.

Each problem is a (field path, message) pair whose message says what would
be valid, so that `hubgate profiles check` and the loader can locate it.
"""

from __future__ import annotations

import re
from collections import defaultdict

from hubgate.profiles.facts import source_problems
from hubgate.profiles.model import (
    DataType,
    DeviceKind,
    Encoding,
    Profile,
    Quantity,
    Register,
    Unit,
)
from hubgate.profiles.plan import RegisterSpec, all_registers
from hubgate.tomlcheck import Loc

_SETPOINT_UNITS = {
    "current_limit": Unit.AMPERE,
    "power_limit": Unit.WATT,
    "charge_power_limit": Unit.WATT,
    "discharge_power_limit": Unit.WATT,
}


def _loc(path: str) -> Loc:
    """`"fields.current_l1"` or `"identification[2]"` as a location tuple."""
    parts: list[str | int] = []
    for piece in path.split("."):
        name, _, index = piece.partition("[")
        parts.append(name)
        if index:
            parts.append(int(index.rstrip("]")))
    return tuple(parts)


def unit_problems(profile: Profile) -> list[tuple[Loc, str]]:
    """Fields and setpoints whose unit is not their quantity's canonical unit."""
    found: list[tuple[Loc, str]] = []
    for quantity, spec in profile.fields.items():
        if spec.unit is not quantity.unit:
            found.append(
                (
                    ("fields", str(quantity), "unit"),
                    f"{quantity} is given in '{quantity.unit}': set unit = '{quantity.unit}' "
                    f"and fold the conversion into scale (got '{spec.unit}')",
                )
            )
    for name, setpoint in profile.commands.setpoints.items():
        want = Unit.PERCENT if setpoint.percent_of is not None else _SETPOINT_UNITS[name]
        if setpoint.unit is not want:
            found.append(
                (
                    ("commands", name, "unit"),
                    f"{name} is given in '{want}': set unit = '{want}' and fold the "
                    f"conversion into scale (got '{setpoint.unit}')",
                )
            )
    failsafe = profile.failsafe
    limit = next(iter(profile.commands.setpoints.values()), None)
    wanted: list[tuple[str, Encoding | None, Unit]] = [("timeout", failsafe.timeout, Unit.SECOND)]
    if limit is not None:
        wanted.append(("fallback", failsafe.fallback, limit.unit))
    for name, register, unit in wanted:
        if register is not None and register.unit is not unit:
            found.append(
                (
                    ("failsafe", name, "unit"),
                    f"the {name} is given in '{unit}': set unit = '{unit}' and fold the "
                    f"conversion into scale (got '{register.unit}')",
                )
            )
    return found


def _same(a: RegisterSpec, b: RegisterSpec) -> bool:
    return a.address == b.address and a.count == b.count


def overlap_problems(profile: Profile) -> list[tuple[Loc, str]]:
    """Registers of one table that partly overlap (sharing a whole register is fine)."""
    tables: dict[tuple[int, str], list[tuple[str, RegisterSpec]]] = defaultdict(list)
    for path, (unit, spec) in all_registers(profile).items():
        own = profile.transport.unit if unit is None else unit
        tables[(own, spec.function)].append((path, spec))
    found: list[tuple[Loc, str]] = []
    for entries in tables.values():
        entries.sort(key=lambda e: (e[1].address, e[1].count))
        for i, (path, spec) in enumerate(entries):
            for other_path, other in entries[:i]:
                if other.end > spec.address and not _same(spec, other):
                    found.append(
                        (
                            _loc(path),
                            f"{spec.function} registers {spec.address}..{spec.end - 1} overlap "
                            f"{other_path} ({other.address}..{other.end - 1}); fix the address "
                            "or the type/count",
                        )
                    )
    for i, (first, last) in enumerate(profile.quirks.forbidden):
        for path, (_unit, spec) in all_registers(profile).items():
            if spec.address <= last and spec.end > first:
                found.append(
                    (
                        _loc(path),
                        f"address {spec.address} lies in quirks.forbidden[{i}] "
                        f"({first}..{last}); remove the field or the range",
                    )
                )
    return found


def failsafe_problems(profile: Profile) -> list[tuple[Loc, str]]:
    """A heartbeat slower than half the device's timeout; a charger that cannot be limited."""
    failsafe = profile.failsafe
    found: list[tuple[Loc, str]] = []
    if failsafe.present and failsafe.timeout and failsafe.timeout.default_s and failsafe.heartbeat:
        limit = failsafe.timeout.default_s / 2
        if failsafe.heartbeat.period_s > limit:
            found.append(
                (
                    ("failsafe", "heartbeat", "period_s"),
                    f"a heartbeat every {failsafe.heartbeat.period_s} s can miss a "
                    f"{failsafe.timeout.default_s} s timeout: use at most {limit:g} s",
                )
            )
    if failsafe.present and not profile.commands.setpoints:
        found.append(
            (
                ("failsafe", "present"),
                "a failsafe falls back from a setpoint: add one under [commands] "
                "or set present = false with a reason",
            )
        )
    limits = {"current_limit", "power_limit"} & set(profile.commands.setpoints)
    if profile.kind is DeviceKind.CHARGER and not limits:
        found.append((("commands",), "a charger needs [commands.current_limit] or power_limit"))
    return found


def reference_problems(profile: Profile) -> list[tuple[Loc, str]]:
    """States naming a missing field, SunSpec blocks and scale factors that do not exist."""
    found: list[tuple[Loc, str]] = []
    if profile.states is not None and profile.states.field not in profile.fields:
        found.append(
            (
                ("states", "field"),
                f"state field '{profile.states.field}' is not among the fields: add "
                f"[fields.{profile.states.field}] or name one of {', '.join(profile.fields)}",
            )
        )
    rule = profile.grid_operator
    for quantity in rule.feed_in_percent if rule else ():
        if quantity not in profile.fields:
            found.append(
                (
                    ("grid_operator", "feed_in_percent", str(quantity)),
                    f"'{quantity}' is not among the fields: add [fields.{quantity}] or drop it",
                )
            )
    beat = Quantity.GRID_LIMIT_HEARTBEAT
    timeout = rule.heartbeat_timeout_s if rule else None
    if beat in profile.fields and timeout is None:
        found.append(
            (
                ("grid_operator", "heartbeat_timeout_s"),
                f"{beat} is read to tell a hung box: say after how long it is stale "
                "([grid_operator] heartbeat_timeout_s = seconds)",
            )
        )
    if timeout is not None and beat not in profile.fields:
        found.append(
            (
                ("grid_operator", "heartbeat_timeout_s"),
                f"a heartbeat timeout needs the counter: add [fields.{beat}] or drop it",
            )
        )
    for name, setpoint in profile.commands.setpoints.items():
        if setpoint.percent_of is not None and setpoint.percent_of not in profile.fields:
            found.append(
                (
                    ("commands", name, "percent_of"),
                    f"'{setpoint.percent_of}' is not among the fields: add "
                    f"[fields.{setpoint.percent_of}] or give the setpoint in its own unit",
                )
            )
    blocks = set(profile.sunspec.blocks) if profile.sunspec else set()
    switches = [(n, getattr(profile.commands, n)) for n in ("enable", "phase_switch")]
    for name, switch in switches:
        if switch is not None and switch.block is not None and switch.block not in blocks:
            found.append(
                (
                    ("commands", name, "block"),
                    f"SunSpec block '{switch.block}' is not declared; valid blocks: "
                    + (", ".join(sorted(blocks)) or "none: add a [sunspec] table"),
                )
            )
    registers: list[tuple[Loc, Register]] = [
        (("fields", str(q)), f) for q, f in profile.fields.items()
    ]
    registers += [(("commands", n), s) for n, s in profile.commands.setpoints.items()]
    for loc, register in registers:
        if register.block is not None and register.block not in blocks:
            valid = ", ".join(sorted(blocks)) or "none: add a [sunspec] table"
            found.append(
                (
                    (*loc, "block"),
                    f"SunSpec block '{register.block}' is not declared; valid blocks: {valid}",
                )
            )
        if register.scale_factor is not None and register.block is None:
            found.append(
                (
                    (*loc, "scale_factor"),
                    "a scale_factor is an offset into a SunSpec block: set block",
                )
            )
    return found


_RANGES = {
    DataType.U16: (0, 0xFFFF),
    DataType.I16: (-0x8000, 0x7FFF),
    DataType.U32: (0, 0xFFFF_FFFF),
    DataType.I32: (-0x8000_0000, 0x7FFF_FFFF),
    DataType.U64: (0, 0xFFFF_FFFF_FFFF_FFFF),
    DataType.I64: (-0x8000_0000_0000_0000, 0x7FFF_FFFF_FFFF_FFFF),
}


def example_text(example: str | int | float) -> str:
    """An identification value as the text its `match` is tried on."""
    if isinstance(example, float) and example.is_integer():
        return str(int(example))
    return str(example)


def value_problems(profile: Profile) -> list[tuple[Loc, str]]:
    """State keys of the wrong kind, setpoints that do not fit their type, bad examples."""
    found: list[tuple[Loc, str]] = []
    states = profile.states
    state_field = profile.fields.get(states.field) if states else None
    if states is not None and state_field is not None and state_field.type is not DataType.STRING:
        for key in states.map:
            if not re.fullmatch(r"-?\d+", key):
                found.append(
                    (
                        ("states", "map", key),
                        f"key '{key}' is not a number, but {states.field} is "
                        f'{state_field.type}: use the raw value as text, e.g. "2"',
                    )
                )
    for name, setpoint in profile.commands.setpoints.items():
        bounds = _RANGES.get(setpoint.type)
        raw = (setpoint.max - setpoint.offset) / setpoint.scale
        if (
            bounds is not None
            and setpoint.scale_factor is None
            and not bounds[0] <= raw <= bounds[1]
        ):
            found.append(
                (
                    ("commands", name, "max"),
                    f"{setpoint.max:g} {setpoint.unit} is raw {raw:g} at scale "
                    f"{setpoint.scale:g}, outside {setpoint.type} ({bounds[0]}..{bounds[1]})",
                )
            )
    for i, ident in enumerate(profile.identification):
        text = example_text(ident.example)
        if ident.match is not None and not re.search(ident.match, text):
            found.append(
                (
                    ("identification", i, "example"),
                    f"example '{text}' does not match '{ident.match}': fix one of them",
                )
            )
    return found


def profile_problems(profile: Profile) -> list[tuple[Loc, str]]:
    """Every check beyond the schema; empty when the profile is sound."""
    references = reference_problems(profile)
    if references:  # overlaps need resolvable addresses
        return references + unit_problems(profile) + source_problems(profile)
    return (
        unit_problems(profile)
        + overlap_problems(profile)
        + failsafe_problems(profile)
        + value_problems(profile)
        + source_problems(profile)
    )
