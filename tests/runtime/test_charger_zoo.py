"""End to end in one process: the charger zoo's DC chargers are held at their minimum over
OCPP and start the sessions of the EVs that come to them.

The zoo (examples/scenarios/charger-zoo.toml) is judged whole on the real processes by
test_charger_zoo_run.py: no violation through the grid-operator step and the CSMS outage, and
every quirky charger named by the API. What that test cannot show on a loaded machine, where
a DC charger's minimum comes after its EV in real time, is shown here on the zoo's four DC
chargers alone (its site file's chargers and meters on their feeder, nothing else plugged in),
the simulation stepped with the gateway's cycles: a 150 kW DC charger refuses to start a
session while it is given less than its minimum (NoFreePower, a user report:
hubgate.sim.station_personalities), so the gateway holds its minimum while it is idle, in W
over the wire (`dc-min-power` takes no A), and an EV that comes starts a session at once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest
import trio

from hubgate.runtime.demo import Demo, open_demo
from hubgate.sim.engine import Simulation
from hubgate.sim.scenario import Arrivals
from hubgate.sim.scenario_loader import LoadedScenario, load_scenario
from hubgate.sim.station_personalities import PersonalityName
from tests.support.e2e import run_for, until_connected

SCENARIO = Path(__file__).parents[2] / "examples" / "scenarios" / "charger-zoo.toml"
HELD_WITHIN_S = 60
"""Simulated seconds for the gateway to configure the idle stations and offer their minimum."""
STARTED_WITHIN_S = 10
"""Simulated seconds from the EVs' arrival to every session started."""


def dc_only(zoo: LoadedScenario) -> LoadedScenario:
    """The zoo's `dc-min-power` chargers on their feeder with the meters above them; no EV
    until the test brings one, no scenario events."""
    dc = {
        c for c, name in zoo.scenario.personalities.items() if name is PersonalityName.DC_MIN_POWER
    }
    chargers = [c for c in zoo.site.chargers if c.id in dc]
    feeder = {c.node for c in chargers}
    assert len(chargers) == 4, dc
    assert len(feeder) == 1, feeder
    above = {"grid", *(n.parent for n in zoo.site.nodes if n.id in feeder)}
    site = zoo.site.model_copy(
        update={
            "chargers": chargers,
            "meters": [m for m in zoo.site.meters if m.node in above | feeder],
        }
    )
    scenario = zoo.scenario.model_copy(
        update={
            "arrivals": Arrivals(initial_occupancy=0.0),
            "events": (),
            "personalities": dict.fromkeys(dc, PersonalityName.DC_MIN_POWER),
        }
    )
    return LoadedScenario(scenario, site, zoo.path)


class State(NamedTuple):
    """A DC station's connector as the test sees it."""

    held: bool
    """Given profiles by the gateway that offer it at least its minimum (`no_free_power`
    false: it shows itself Available)."""
    plugged: bool
    started: bool
    """A transaction started."""


States = dict[str, State]


def states(demo: Demo, sim: Simulation) -> States:
    return {
        s.charger.id: State(
            bool(s.limits.profiles) and not s.limits.no_free_power(c),
            sim.evs[c.slot] is not None,
            c.tx_generation > 0,
        )
        for s in demo.sim_site.site.stations
        for c in s.connectors
    }


async def until(demo: Demo, within_s: int, done: Callable[[State], bool]) -> States:
    """Step the site (`run_for`) until `done` holds for every station, at most `within_s`
    simulated seconds; the last states."""
    for _ in range(within_s):
        now: States = await demo.simulation(lambda s: states(demo, s))  # type: ignore[assignment]
        if all(done(state) for state in now.values()):
            return now
        await run_for(demo, 1)
    last: States = await demo.simulation(lambda s: states(demo, s))  # type: ignore[assignment]
    return last


@pytest.mark.timeout(300)  # after the deadline below, so that Trio ends the test cleanly
async def test_dc_chargers_held_at_their_minimum_start_sessions() -> None:
    loaded = dc_only(load_scenario(SCENARIO))
    with trio.fail_after(240):
        async with open_demo(loaded, meter_values_s=10) as demo:
            await until_connected(demo, 4)
            # Idle, each is offered its minimum (W) on top of the gateway's 0 W failsafe
            # profile, under which it would show itself Unavailable (NoFreePower).
            held = await until(demo, HELD_WITHIN_S, lambda state: state.held)
            assert all(state.held for state in held.values()), held

            def arrive(sim: Simulation) -> None:
                for station in demo.sim_site.site.stations:
                    sim.plug_in(station.connectors[0].slot, sim.now)

            await demo.simulation(arrive)
            started = await until(demo, STARTED_WITHIN_S, lambda state: state.started)
    assert all(state.plugged and state.started for state in started.values()), started
