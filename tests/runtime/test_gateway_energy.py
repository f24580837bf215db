"""End to end: the gateway runs the simulated site's battery and PV over Modbus.

Real peers: the simulator's pymodbus devices (two Alfen chargers, an SDM630 grid
meter, an SMA Sunny Boy Storage or a SunSpec hybrid inverter with storage, and a
SunSpec inverter). Around noon the PV
exports more than the grid-mode EV and the base load take, so the PV-mode
connector charges from that surplus; then a cloud covers the PV: the import
would pass the 25 kW peak target, the battery discharges and the PV-mode
connector stops. Simulated time advances one second per control cycle (0.25 s).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from hubgate.runtime.demo import open_demo
from hubgate.sim.engine import Simulation
from hubgate.sim.scenario_loader import load_scenario
from tests.support.e2e import sampled
from tests.support.toml_tables import (
    battery_20kwh,
    connector_32a,
    meter,
    modbus,
    modbus_charger,
    occupied_site_scenario,
)

SITE = (
    """\
[site]
name = "e2e energy"

[grid]
phase_current_limit_a = 100
power_limit_kw = 60
peak_target_kw = 25

"""
    + modbus_charger("cp-grid", "grid", modbus("alfen-eve", port=1501, unit=1))
    + "\n"
    + modbus_charger(
        "cp-pv", "grid", modbus("alfen-eve", port=1502, unit=1), connector_32a(pv_mode=True)
    )
    + "\n"
    + meter("meter-grid", "grid", modbus("eastron-sdm630", port=1503))
    + "\n"
    + battery_20kwh("BATTERY_MODBUS")
    + """
[[pv]]
id = "pv-roof"
modbus = { profile = "sunspec-inverter", host = "127.0.0.1" }
peak_kw = 50

[control]
cycle_s = 0.25
meter_stale_s = 1
"""
)

SCENARIO = occupied_site_scenario(
    "e2e: PV surplus, then a cloud and a peak", seed=11, start_hour=13, base_load_a=20
) + (
    """
[pv_weather]
sunrise_hour = 6
sunset_hour = 20

[battery]
soc_percent = 60

[[events]]
at_s = 30
kind = "cloud"
pv = "pv-roof"
depth_percent = 100
duration_s = 60
"""
)

CLOUD_FULL = (45.0, 75.0)
"""Simulated seconds when the cloud's shade is complete (15 s edges)."""


def sample(sim: Simulation) -> tuple[float, float, float, float]:
    """(time, PV-mode EV draw A, battery power kW (+ charging), PV kW)."""
    slot = next(i for i, c in enumerate(sim.tree.connectors) if c.charger == "cp-pv")
    ev = sim.evs[slot]
    assert sim.battery is not None
    return (
        sim.now,
        ev.draw_a if ev is not None else 0.0,
        sim.battery.power_kw,
        sum(p.power_kw for p in sim.pv),
    )


BATTERIES = {
    "sma-sunny-boy-storage": '{ profile = "sma-sunny-boy-storage", host = "127.0.0.1", unit = 3 }',
    "sunspec-hybrid-storage": '{ profile = "sunspec-hybrid-storage", host = "127.0.0.1" }',
}
"""The battery in the SMA profile (W limits) and as a SunSpec hybrid (124's % limits, lease)."""


@pytest.mark.parametrize("battery", sorted(BATTERIES))
async def test_pv_surplus_then_a_peak_the_battery_holds(tmp_path: Path, battery: str) -> None:
    (tmp_path / "site.toml").write_text(SITE.replace("BATTERY_MODBUS", BATTERIES[battery]))
    (tmp_path / "scenario.toml").write_text(SCENARIO)
    loaded = load_scenario(tmp_path / "scenario.toml")
    with trio.fail_after(50):
        async with open_demo(loaded) as demo:
            samples = await sampled(demo, 85, sample)
            summary = await demo.summary()
            loop = demo.gateway.loop
            records = loop.decisions.recent(200)
            state = loop.hub.latest
    assert summary.violations == ()
    sunny = [s for s in samples if 15 <= s[0] < 30]
    shaded = [s for s in samples if CLOUD_FULL[0] + 5 <= s[0] < CLOUD_FULL[1]]
    assert min(s[3] for s in sunny) > 45  # kW of PV before the cloud
    assert max(s[3] for s in shaded) < 1
    # before the cloud: the PV-mode EV charges from the surplus, the battery does not discharge
    assert max(s[1] for s in sunny) >= 6
    assert all(s[2] >= -0.1 for s in sunny)
    # under the cloud: the battery discharges for the peak, the PV-mode EV stops
    assert min(s[2] for s in shaded) < -5
    assert all(s[1] == 0 for s in shaded[5:])
    modes = [r.inputs["energy"]["battery_mode"] for r in records]  # type: ignore[index]
    assert "peak-shaving" in modes
    # read every cycle through its profile: a cycle that stalls past meter_stale_s (1 s)
    # under load may find it stale (2 of 90 seen at load 12), a tenth of them at most
    assert modes.count("unavailable") <= len(records) // 10
    # every cycle: the PV-mode connector is offered no more than its budget
    pv_index = next(i for i, c in enumerate(records[-1].connectors) if c.connector == "cp-pv#1")
    for record in records:
        energy = record.inputs["energy"]
        assert isinstance(energy, dict)
        offered_w = record.connectors[pv_index].setpoint_a * 3 * 230
        assert offered_w <= energy["pv_budget_w"] + 1
    assert state is not None
    assert state.energy is not None
    assert state.energy.battery_soc_percent is not None
    devices = {d.id: d for d in state.devices}
    assert devices["cp-pv#1"].device_failsafe is True  # an Alfen: validity time, safe current
    assert devices["battery:battery"].device_failsafe is None
    assert devices["battery:battery"].kind == "battery"
    assert devices["battery:battery"].requests > 80
    assert devices["pv:pv-roof"].requests > 80
