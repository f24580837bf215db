"""What a simulated OCPP station's meter reports: one MeterValue of a connector.

An AC connector reports its phase currents, the current it offers, active power,
the energy register and the EV's SoC; a DC connector its DC power and current (at a
nominal `DC_VOLTAGE_V`), energy and SoC. Values are texts in 1.6, numbers in 2.0.1.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from hubgate.config.model import DcConnector
from hubgate.sim.ocpp_handlers import timestamp
from hubgate.sim.station_state import ConnectorState, StationEnv

DC_VOLTAGE_V = 400.0
"""The DC side's voltage a DC station reports its current at."""

Value = Callable[[float], float | str]


def meter_value(
    connector: ConnectorState,
    env: StationEnv,
    at: datetime,
    *,
    v16: bool,
    measurands: tuple[str, ...] | None,
) -> list[dict[str, Any]]:
    """The connector's `meter_value` list (one sample set at `at`), keeping only
    `measurands` (None: all) of an AC connector."""

    def value(number: float) -> float | str:
        return f"{number:.2f}" if v16 else round(number, 2)

    ev = env.ev(connector.slot)
    draw = ev.draw_a if ev is not None else 0.0
    dc = connector.dc
    samples = (
        _ac_samples(connector, env, draw, value)
        if dc is None
        else _dc_samples(connector, dc, env, draw, value)
    )
    if ev is not None:
        samples.append({"value": value(ev.soc * 100.0), "measurand": "SoC", "unit": "Percent"})
    if dc is None and measurands is not None:
        samples = [s for s in samples if s["measurand"] in measurands]
    if not v16:
        for sample in samples:
            sample["unit_of_measure"] = {"unit": sample.pop("unit")}
    return [{"timestamp": timestamp(at), "sampled_value": samples}]


def _ac_samples(
    connector: ConnectorState, env: StationEnv, draw_a: float, value: Value
) -> list[dict[str, Any]]:
    phases = env.phases(connector.slot) if draw_a > 0 else 0
    samples: list[dict[str, Any]] = [
        {
            "value": value(draw_a if i < phases else 0.0),
            "measurand": "Current.Import",
            "phase": f"L{i + 1}",
            "unit": "A",
        }
        for i in range(3)
    ]
    samples.append(
        {"value": value(connector.offered_a), "measurand": "Current.Offered", "unit": "A"}
    )
    samples.append(
        {
            "value": value(draw_a * phases * env.voltage_v),
            "measurand": "Power.Active.Import",
            "unit": "W",
        }
    )
    samples.append(
        {
            "value": value(env.energy_wh(connector.slot)),
            "measurand": "Energy.Active.Import.Register",
            "unit": "Wh",
        }
    )
    return samples


def _dc_samples(
    connector: ConnectorState, dc: DcConnector, env: StationEnv, draw_a: float, value: Value
) -> list[dict[str, Any]]:
    """DC power and current (at `DC_VOLTAGE_V`) and energy; no AC phase currents."""
    power = dc.dc_w(draw_a, env.voltage_v)
    return [
        {"value": value(power), "measurand": "Power.Active.Import", "unit": "W"},
        {"value": value(power / DC_VOLTAGE_V), "measurand": "Current.Import", "unit": "A"},
        {
            "value": value(env.energy_wh(connector.slot)),
            "measurand": "Energy.Active.Import.Register",
            "unit": "Wh",
        },
    ]
