"""End to end: under the grid operator's 30 % step the battery's power goes to the EVs.

The demo's situation on a small site, against the simulator's real Modbus peers (three
Alfen chargers, an SDM630 grid meter, a grid-operator limit register, and an SMA Sunny
Boy Storage or a SunSpec hybrid inverter with storage): three EVs want 66 kW on a 60 kW
connection with 13.8 kW of base load; the grid operator steps to 30 % (18 kW). The
import stays at the limit (after the EVs' reaction), nothing is fed into the grid, and
the EVs take the battery's power on top of what the grid still gives them. Simulated
time advances one second per control cycle (0.25 s), each step only after a whole cycle
that saw the one before (`one_cycle`: under load the simulation would otherwise outrun
the gateway by a step, and its reaction would look a second slower than it is); the run
ends before the SunSpec battery's revert timeout, which runs on simulated time, could
expire between two of the gateway's re-sends, which run on its own (at least four times
slower) clock.
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
    connector_32a,
    meter,
    modbus,
    modbus_charger,
    occupied_site_scenario,
)

SITE = (
    """\
[site]
name = "e2e curtailment"

[grid]
phase_current_limit_a = 100
power_limit_kw = 60

"""
    + "".join(
        modbus_charger(f"cp-{i}", "grid", modbus("alfen-eve", port=1500 + i), connector_32a())
        + "\n"
        for i in (1, 2, 3)
    )
    + meter("meter-grid", "grid", modbus("eastron-sdm630", port=1504))
    + """
[battery]
id = "battery"
modbus = BATTERY_MODBUS
capacity_kwh = 40
max_charge_kw = 10
max_discharge_kw = 10
charge_from_grid = false

[grid_operator]
source = "modbus-device"
modbus = { profile = "grid-operator-limit-register", host = "127.0.0.1", port = 1506 }

[control]
cycle_s = 0.25
meter_stale_s = 1
"""
)

SCENARIO = occupied_site_scenario(
    "e2e: the grid operator steps to 30 %", seed=5, start_hour=22, base_load_a=20
) + (
    """
[battery]
soc_percent = 70

[[events]]
at_s = 30
kind = "grid-limit"
percent = 30
"""
)

LIMIT_W = 0.3 * 60_000
STEP_S = 30.0
REACTION_S = 8.0
"""The EVs' reaction (3 s), a cycle and a step, and the battery's own reaction."""

BATTERIES = {
    "sma-sunny-boy-storage": '{ profile = "sma-sunny-boy-storage", host = "127.0.0.1", port = 1505, unit = 3 }',
    "sunspec-hybrid-storage": '{ profile = "sunspec-hybrid-storage", host = "127.0.0.1", port = 1505 }',
}


def sample(sim: Simulation) -> tuple[float, float, float, float]:
    """(time, grid power W, EVs' power W, battery power W, positive discharging)."""
    assert sim.battery is not None
    voltage = sim.tree.voltage_v
    evs = sum(ev.draw_a * ev.phases for ev in sim.evs if ev is not None) * voltage
    return (sim.now, sum(sim.node_current()) * voltage, evs, -sim.battery.power_kw * 1000)


@pytest.mark.timeout(90)  # after its deadline, so that Trio ends it cleanly
@pytest.mark.parametrize("battery", sorted(BATTERIES))
async def test_the_battery_feeds_the_evs_not_the_grid(tmp_path: Path, battery: str) -> None:
    (tmp_path / "site.toml").write_text(SITE.replace("BATTERY_MODBUS", BATTERIES[battery]))
    (tmp_path / "scenario.toml").write_text(SCENARIO)
    loaded = load_scenario(tmp_path / "scenario.toml")
    with trio.fail_after(60):
        async with open_demo(loaded) as demo:
            samples = await sampled(demo, 80, sample)
            summary = await demo.summary()
            records = demo.gateway.loop.decisions.recent(40)
    assert summary.violations == ()
    before = [s for s in samples if STEP_S - 6 <= s[0] < STEP_S]
    after = [s for s in samples if s[0] >= STEP_S + REACTION_S]
    assert min(s[1] for s in before) > 40_000  # the EVs charge before the step
    # at the limit: never above it, and not left unused
    assert max(s[1] for s in after) <= LIMIT_W + 300
    assert sum(s[1] for s in after) / len(after) >= LIMIT_W - 3_000
    # nothing fed into the grid, whatever the battery does
    assert min(s[1] for s in samples if s[0] >= STEP_S) >= -300
    # the EVs take the battery's power on top of the grid's 18 kW less the 13.8 kW base
    settled = after[10:]
    battery_w = sum(s[3] for s in settled) / len(settled)
    evs_w = sum(s[2] for s in settled) / len(settled)
    assert battery_w > 8_000
    assert evs_w >= LIMIT_W - 20 * 3 * 230 + battery_w - 3_000
    balance = records[-1].inputs["balance"]
    assert isinstance(balance, dict)
    assert balance["binding"] == "grid-operator"
    assert balance["battery_w"] > 8_000
