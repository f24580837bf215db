"""MeterValues (1.6) and TransactionEvent/MeterValues (2.x) samples → one measurement.

Only what the site model needs is kept: per-phase current and voltage, total
active power, the energy register and the state of charge. Units are
normalised to A, V, W, Wh and %. For a charger that reports only its energy
register, the average power between its last two readings is kept too.

A sample whose value is not a finite number once scaled (a 2.x multiplier of 309 or
more, 1e308 kWh, a 1.6 "1e400", "inf" or "NaN") is skipped like an unreadable one: the
message is valid (its schema sets no bound) and is answered and kept, but a reading
holds numbers (`readings` tells the caller which it skipped).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

from hubgate.ocpp.versions import OcppVersion

Phases = tuple[float | None, float | None, float | None]

_PHASE_INDEX = {"L1": 0, "L2": 1, "L3": 2, "L1-N": 0, "L2-N": 1, "L3-N": 2}
_SCALE = {"kW": 1000.0, "kWh": 1000.0, "kVA": 1000.0, "kvar": 1000.0, "kvarh": 1000.0}
_DEFAULT_MEASURAND = "Energy.Active.Import.Register"
_CURRENT, _VOLTAGE, _POWER, _ENERGY, _SOC, _OFFERED = range(6)
_KEPT = {
    "Current.Import": _CURRENT,
    "Voltage": _VOLTAGE,
    "Power.Active.Import": _POWER,
    _DEFAULT_MEASURAND: _ENERGY,
    "SoC": _SOC,
    "Current.Offered": _OFFERED,
}
"""The measurands kept; the others are skipped before their value is read."""


class Measurement(NamedTuple):
    """The latest known values of one connector (None: never reported). A named tuple:
    one is made per MeterValues, and a tuple is made several times faster than a frozen
    dataclass."""

    timestamp: datetime | None = None
    current_a: Phases = (None, None, None)
    voltage_v: Phases = (None, None, None)
    power_w: float | None = None
    energy_wh: float | None = None
    soc_percent: float | None = None
    offered_current_a: float | None = None
    energy_at: datetime | None = None
    """When `energy_wh` was sampled."""
    energy_power_w: float | None = None
    """Average power between the last two energy readings (W)."""


_LEAP_SECOND = re.compile(r"([Tt ]\d\d:\d\d):60(?:\.\d+)?")


def parse_timestamp(text: str) -> datetime:
    """An OCPP timestamp; one without an offset is read as UTC. A leap second (`23:59:60`
    UTC: OCPP's dateTime is RFC 3339's, which allows it, and so does the schema check) is
    the last microsecond of the second before it, which a `datetime` can hold: the same
    day, not before any moment sent before it nor after any sent after it."""
    try:
        moment = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        clamped, leap = _LEAP_SECOND.subn(r"\1:59.999999", text, count=1)
        if not leap:
            raise
        moment = datetime.fromisoformat(clamped.replace("z", "Z"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


Reading = tuple[str, Phases, Phases, float | None, float | None, float | None, float | None]
"""One `meterValue` reduced to what is kept: (timestamp as sent, current per phase,
voltage per phase, power W, energy register Wh, SoC %, offered current A); None: not in
it. `hubgate._core.OcppCallReader` makes them from a frame's text, `reading` from a
parsed payload."""


def readings(
    meter_values: list[dict[str, Any]], version: OcppVersion, skipped: list[str] | None = None
) -> list[Reading]:
    """The `Reading` of each parsed `meterValue`; the measurand of each sample skipped for
    a value that is not a finite number is appended to `skipped`."""
    value_of = _value_16 if version is OcppVersion.V16 else _value_2
    return [reading(mv, value_of, skipped) for mv in meter_values]


def merge_readings(previous: Measurement, readings: list[Reading]) -> Measurement:
    """`previous` updated with `readings` in the order of their timestamps."""
    if len(readings) == 1:  # (the usual case)
        only = readings[0]
        return _merge_one(previous, parse_timestamp(only[0]), only)
    stamped = [(parse_timestamp(r[0]), r) for r in readings]
    stamped.sort(key=lambda pair: pair[0])
    current = previous
    for at, one in stamped:
        current = _merge_one(current, at, one)
    return current


def reading(
    meter_value: dict[str, Any],
    value_of: Callable[[dict[str, Any]], float | None],
    skipped: list[str] | None = None,
) -> Reading:
    """The `Reading` of one parsed `meterValue` (`value_of`: the version's sample value;
    `skipped`: as in `readings`)."""
    current: list[float | None] = [None, None, None]
    voltage: list[float | None] = [None, None, None]
    power_w: float | None = None
    reported_wh: float | None = None
    soc_percent: float | None = None
    offered_current_a: float | None = None
    total_power = False
    phase_power: list[float] = []
    for sample in meter_value["sampledValue"]:
        measurand = sample.get("measurand", _DEFAULT_MEASURAND)
        kind = _KEPT.get(measurand)
        if kind is None:
            continue
        value = value_of(sample)
        if value is None:
            continue
        if not math.isfinite(value):
            if skipped is not None:
                skipped.append(measurand)
            continue
        if kind == _CURRENT:
            phase = _PHASE_INDEX.get(sample.get("phase", ""))
            current[0 if phase is None else phase] = value
        elif kind == _VOLTAGE:
            phase = _PHASE_INDEX.get(sample.get("phase", ""))
            if phase is not None:
                voltage[phase] = value
        elif kind == _POWER:
            if _PHASE_INDEX.get(sample.get("phase", "")) is None:
                power_w, total_power = value, True
            else:
                phase_power.append(value)
        elif kind == _ENERGY:
            if "phase" not in sample:
                reported_wh = value
        elif kind == _SOC:
            soc_percent = value
        else:
            offered_current_a = value
    if phase_power and not total_power:
        power_w = sum(phase_power)
        if not math.isfinite(power_w):  # (finite phases whose sum is not)
            power_w = None
            if skipped is not None:
                skipped.append("Power.Active.Import")
    return (
        meter_value["timestamp"],
        (current[0], current[1], current[2]),
        (voltage[0], voltage[1], voltage[2]),
        power_w,
        reported_wh,
        soc_percent,
        offered_current_a,
    )


def _merge_one(state: Measurement, at: datetime, one: Reading) -> Measurement:
    _, current, voltage, power_w, reported_wh, soc_percent, offered_current_a = one
    energy_wh, energy_at, energy_power_w = state.energy_wh, state.energy_at, state.energy_power_w
    if reported_wh is not None:
        energy_wh, energy_at = reported_wh, at
        last_wh, last_at = state.energy_wh, state.energy_at
        if last_wh is not None and last_at is not None and at > last_at:
            hours = (at - last_at).total_seconds() / 3600
            average = max(reported_wh - last_wh, 0.0) / hours
            energy_power_w = average if math.isfinite(average) else None
    old_current, old_voltage = state.current_a, state.voltage_v
    return Measurement(
        at,
        current if None not in current else _either(current, old_current),
        voltage if None not in voltage else _either(voltage, old_voltage),
        state.power_w if power_w is None else power_w,
        energy_wh,
        state.soc_percent if soc_percent is None else soc_percent,
        state.offered_current_a if offered_current_a is None else offered_current_a,
        energy_at,
        energy_power_w,
    )


def _either(new: Phases, old: Phases) -> Phases:
    """Each phase's new value, or its old one where there is none."""
    return (
        old[0] if new[0] is None else new[0],
        old[1] if new[1] is None else new[1],
        old[2] if new[2] is None else new[2],
    )


def _value_16(sample: dict[str, Any]) -> float | None:
    """A 1.6 sample in base units, or None for signed or unreadable data."""
    if sample.get("format") == "SignedData":
        return None
    try:
        number = float(sample["value"])
    except ValueError:
        return None
    unit = sample.get("unit")
    return number if unit is None else number * _SCALE.get(unit, 1.0)


def _value_2(sample: dict[str, Any]) -> float:
    """A 2.x sample in base units (infinite when its power of ten is beyond a float)."""
    unit = sample.get("unitOfMeasure")
    if unit is None:
        return float(sample["value"])
    try:
        power: float = 10.0 ** unit.get("multiplier", 0)
    except OverflowError:
        return math.inf
    return float(sample["value"]) * (_SCALE.get(unit.get("unit", "Wh"), 1.0) * power)
