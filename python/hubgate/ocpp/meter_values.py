"""MeterValues (1.6) and TransactionEvent/MeterValues (2.x) samples → one measurement.

Only what the site model needs is kept: per-phase current and voltage, total
active power, the energy register and the state of charge. Units are
normalised to A, V, W, Wh and %. For a charger that reports only its energy
register, the average power between its last two readings is kept too.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
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
    current = previous
    for meter_value in sorted(meter_values, key=lambda mv: parse_timestamp(mv["timestamp"])):
        current = _merge_one(current, meter_value, version)
    return current


def _merge_one(
    state: Measurement, meter_value: dict[str, Any], version: OcppVersion
) -> Measurement:
    current = list(state.current_a)
    voltage = list(state.voltage_v)
    fields: dict[str, Any] = {"timestamp": parse_timestamp(meter_value["timestamp"])}
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
                fields["power_w"] = value
            else:
                phase_power.append(value)
        elif measurand == "Energy.Active.Import.Register" and "phase" not in sample:
            fields["energy_wh"] = value
        elif measurand == "SoC":
            fields["soc_percent"] = value
        elif measurand == "Current.Offered":
            fields["offered_current_a"] = value
    if phase_power and "power_w" not in fields:
        fields["power_w"] = sum(phase_power)
    if "energy_wh" in fields:
        at = fields["timestamp"]
        fields["energy_at"] = at
        if state.energy_wh is not None and state.energy_at is not None and at > state.energy_at:
            hours = (at - state.energy_at).total_seconds() / 3600
            fields["energy_power_w"] = max(fields["energy_wh"] - state.energy_wh, 0.0) / hours
    return replace(state, current_a=_phases(current), voltage_v=_phases(voltage), **fields)


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
