"""MeterValues (1.6) and TransactionEvent/MeterValues (2.x) samples → one measurement.

Only what the site model needs is kept: per-phase current and voltage, total
active power, the energy register and the state of charge. Units are
normalised to A, V, W, Wh and %. For a charger that reports only its energy
register, the average power between its last two readings is kept too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hubgate.ocpp.versions import OcppVersion

Phases = tuple[float | None, float | None, float | None]

_PHASE_INDEX = {"L1": 0, "L2": 1, "L3": 2, "L1-N": 0, "L2-N": 1, "L3-N": 2}
_SCALE = {"kW": 1000.0, "kWh": 1000.0, "kVA": 1000.0, "kvar": 1000.0, "kvarh": 1000.0}
_DEFAULT_MEASURAND = "Energy.Active.Import.Register"


@dataclass(frozen=True)
class Measurement:
    """The latest known values of one connector (None: never reported)."""

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


def parse_timestamp(text: str) -> datetime:
    """An OCPP timestamp; one without an offset is read as UTC."""
    moment = datetime.fromisoformat(text.replace("z", "Z"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def merge_meter_values(
    previous: Measurement, meter_values: list[dict[str, Any]], version: OcppVersion
) -> Measurement:
    """`previous` updated with every sample of `meter_values` (later samples win)."""
    stamped = [(parse_timestamp(mv["timestamp"]), mv) for mv in meter_values]
    if len(stamped) > 1:
        stamped.sort(key=lambda pair: pair[0])
    current = previous
    for at, meter_value in stamped:
        current = _merge_one(current, at, meter_value, version)
    return current


def _merge_one(
    state: Measurement, at: datetime, meter_value: dict[str, Any], version: OcppVersion
) -> Measurement:
    current = list(state.current_a)
    voltage = list(state.voltage_v)
    power_w, reported_wh = state.power_w, None
    soc_percent, offered_current_a = state.soc_percent, state.offered_current_a
    total_power = False
    phase_power: list[float] = []
    for sample in meter_value["sampledValue"]:
        value = _value(sample, version)
        if value is None:
            continue
        measurand = sample.get("measurand", _DEFAULT_MEASURAND)
        phase = _PHASE_INDEX.get(sample.get("phase", ""))
        if measurand == "Current.Import":
            current[0 if phase is None else phase] = value
        elif measurand == "Voltage" and phase is not None:
            voltage[phase] = value
        elif measurand == "Power.Active.Import":
            if phase is None:
                power_w, total_power = value, True
            else:
                phase_power.append(value)
        elif measurand == "Energy.Active.Import.Register" and "phase" not in sample:
            reported_wh = value
        elif measurand == "SoC":
            soc_percent = value
        elif measurand == "Current.Offered":
            offered_current_a = value
    if phase_power and not total_power:
        power_w = sum(phase_power)
    energy_wh, energy_at, energy_power_w = state.energy_wh, state.energy_at, state.energy_power_w
    if reported_wh is not None:
        energy_wh, energy_at = reported_wh, at
        last_wh, last_at = state.energy_wh, state.energy_at
        if last_wh is not None and last_at is not None and at > last_at:
            hours = (at - last_at).total_seconds() / 3600
            energy_power_w = max(reported_wh - last_wh, 0.0) / hours
    return Measurement(  # (made directly: `replace` is several times slower, per message)
        timestamp=at,
        current_a=_phases(current),
        voltage_v=_phases(voltage),
        power_w=power_w,
        energy_wh=energy_wh,
        soc_percent=soc_percent,
        offered_current_a=offered_current_a,
        energy_at=energy_at,
        energy_power_w=energy_power_w,
    )


def _phases(values: list[float | None]) -> Phases:
    return (values[0], values[1], values[2])


def _value(sample: dict[str, Any], version: OcppVersion) -> float | None:
    """The sample in base units, or None for signed or unreadable data."""
    if version is OcppVersion.V16:
        if sample.get("format") == "SignedData":
            return None
        try:
            number = float(sample["value"])
        except ValueError:
            return None
        return number * _SCALE.get(sample.get("unit", "Wh"), 1.0)
    unit = sample.get("unitOfMeasure", {})
    scale: float = _SCALE.get(unit.get("unit", "Wh"), 1.0) * 10.0 ** unit.get("multiplier", 0)
    return float(sample["value"]) * scale
