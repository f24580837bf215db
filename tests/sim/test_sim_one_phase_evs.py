"""One-phase EVs at three-phase connectors under hubgate's own loop on the simulated site.

Three 32 A three-phase chargers on a 50 A connection, each with a one-phase 32 A EV; the
second charger is wired L2L3L1, so its EV draws on grid L2. Counted on all three phases
they would share 50 A: 16 A each, 48 A used on L1 and 16 on L2. Seen drawing on one phase
(`ConnectorRuntime.observe_phases`), the two on L1 share it and the one on L2 takes its
maximum: the connection is used, and no limit is broken on the way.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from hubgate.sim import Simulation, load_scenario
from hubgate.sim.inprocess import control_loop, run_hubgate

CHARGERS = "".join(
    f"""
[[chargers]]
id = "cp-{n}"
node = "grid"
phase_rotation = "{rotation}"
ocpp = {{ identity = "CP-{n}" }}
connectors = [{{ id = 1, max_current_a = 32 }}]
"""
    for n, rotation in ((1, "L1L2L3"), (2, "L2L3L1"), (3, "L1L2L3"))
)

SITE = (
    """\
[site]
name = "one-phase EVs"

[grid]
phase_current_limit_a = 50
safety_margin_a = 0
"""
    + CHARGERS
    + """
[[meters]]
id = "meter-grid"
node = "grid"
modbus = { profile = "eastron-sdm630", host = "127.0.0.1", port = 1502 }
"""
)

SCENARIO = """\
[scenario]
name = "one-phase EVs"
site = "site.toml"
duration_s = 600
seed = 3

[arrivals]
initial_occupancy = 1.0
rate_per_hour = 0
mean_stay_h = 5

[[ev_mix]]
name = "compact-1p-32a"
capacity_kwh = 60
max_current_a = 32
phases = 1
arrival_soc = [0.2, 0.3]
"""


@pytest.mark.timeout(120)
def test_one_phase_evs_count_on_their_phase_and_use_the_connection(tmp_path: Path) -> None:
    (tmp_path / "site.toml").write_text(SITE)
    (tmp_path / "scenario.toml").write_text(SCENARIO)
    sim = Simulation(load_scenario(tmp_path / "scenario.toml"))
    loop = control_loop(sim)
    early: list[float] = []

    def on_step(s: Simulation) -> None:
        if s.now == 15.0:
            early.extend(ev.draw_a for ev in s.evs if ev is not None)

    trio.run(
        lambda: run_hubgate(sim, 90.0, on_step, loop=loop),
        clock=trio.testing.MockClock(autojump_threshold=0),
    )
    assert sim.recorder.summary().violations == ()
    assert len(early) == 3
    # before they are seen on one phase each counts on all three: 50 A shared (16.7, 16.7, 16.6)
    assert sum(early) <= 50 + 1e-6
    assert [r.ev_phase for r in loop.planner.connectors] == [0, 1, 0]
    record = loop.decisions.recent(1)[0]  # what was commanded counts on those phases too
    first, second, third = (d.setpoint_a for d in record.connectors)
    assert record.grid is not None
    assert min(first, second, third) > 0
    assert record.grid.commanded_a == (first + third, second, 0.0)
    draws = [ev.draw_a for ev in sim.evs if ev is not None]
    assert draws == [25.0, 32.0, 25.0]  # L1 shared by two, L2 to the one there
    l1, l2, l3 = sim.currents[0:3]
    assert (l1, l2, l3) == (50.0, 32.0, 0.0)
