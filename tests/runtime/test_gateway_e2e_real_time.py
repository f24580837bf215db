"""End to end at the gateway's own pace: one simulated second per control cycle of 1 s.

test_gateway_e2e.py runs the gateway's cycle at 0.25 s against one simulated second per
cycle, so every rule timed on the gateway's clock (`change_interval_s`, `settle_s`,
`meter_stale_s`, the OCPP leases) lasts four times as long against the simulated EVs'
reaction of 3-5 s. Here the two clocks agree (under load the gateway's runs ahead, never
behind), and the reaction times docs/control.md gives are checked where they show: a
grid-operator step commanded in the cycle that reads it, a silent charger reserved after 3
cycles, a dead meter's node degraded once it is `meter_stale_s` old (never within two
cycles) and trusted again after twice that of fresh readings; and no limit exceeded longer
than the EVs' reaction + a cycle + a step (the recorder). 37 simulated seconds: about 45 s
of wall time (42-47 s at load 5-12).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import trio

from hubgate.runtime.demo import Demo, open_demo
from hubgate.sim.scenario_loader import load_scenario
from tests.support.e2e import one_cycle, until_connected

SCENARIO = Path(__file__).parent / "e2e-real-time.toml"
STEP_AT, OFFLINE_AT, METER_DIES_AT, METER_BACK_AT = 10, 15, 20, 30
"""e2e-real-time.toml's events (simulated seconds)."""
STEP_KW = 20.7
"""30 % of the site's 69 kW."""
UNREACHABLE_AFTER_CYCLES = 3
END = 36


@dataclasses.dataclass(frozen=True)
class Second:
    """The gateway's decision in the first cycle that read the site at a simulated second."""

    limit_kw: float
    over_a: float
    """How far its setpoints' sum exceeds the grid's phase limit in force (0: within)."""
    notes: tuple[str, ...]
    meter_age_s: float | None
    """How old the grid meter's reading was in it."""


async def decisions(demo: Demo) -> list[Second]:
    """From simulated second 0 to `END`: each second, a control cycle that started after
    the simulation reached it, then one simulated second."""
    seconds = []
    for _ in range(END + 1):
        await one_cycle(demo)
        record = demo.gateway.loop.decisions.recent(1)[0]
        grid = record.grid
        assert grid is not None
        over = max(c - limit for c, limit in zip(grid.commanded_a, grid.limit_a, strict=True))
        state = demo.gateway.loop.hub.latest
        assert state is not None
        age = state.nodes[0].measured_age_s
        seconds.append(Second(grid.limit_kw, max(0.0, over), record.notes, age))
        await demo.advance(1.0)
    return seconds


def first(seconds: list[Second], since: int, pattern: str) -> int:
    """The first simulated second from `since` whose decision has a note matching `pattern`."""
    return next(
        t
        for t in range(since, len(seconds))
        if any(re.search(pattern, n) for n in seconds[t].notes)
    )


@pytest.mark.timeout(200)  # after its deadline, so that Trio ends it cleanly
async def test_reaction_times_hold_with_the_gateway_and_the_evs_on_one_clock() -> None:
    loaded = load_scenario(SCENARIO)
    site = loaded.site.model_copy(
        update={"control": loaded.site.control.model_copy(update={"cycle_s": 1.0})}
    )
    loaded = dataclasses.replace(loaded, site=site)
    with trio.fail_after(180):
        async with open_demo(loaded) as demo:
            await until_connected(demo, 3)
            seconds = await decisions(demo)
            summary = await demo.summary()
    assert summary.reaction_s == 5 + 1.0 + 1.0  # the slowest EV, a cycle, a step
    assert summary.violations == ()
    # the step, written to the box within [10, 11) s, is read and commanded in one cycle
    stepped = next(t for t, s in enumerate(seconds) if s.limit_kw == STEP_KW)
    assert stepped == STEP_AT + 1
    assert seconds[stepped].over_a == 0.0
    # cp-2 answers nothing from 15 s: reserved after 3 cycles of silence
    lost = first(seconds, OFFLINE_AT, r"^cp-2#1 unreachable: [\d.]+ A reserved$")
    assert lost <= OFFLINE_AT + 1 + UNREACHABLE_AFTER_CYCLES
    # the grid meter: lost once its reading is older than meter_stale_s, never within two
    # cycles (2 s here); trusted again after twice that of fresh readings, counted from the
    # first (once its connection is back)
    stale_after_s = site.control.meter_stale_after_s
    degraded = first(seconds, METER_DIES_AT, r"^grid meter lost: 50% budget$")
    assert degraded <= METER_DIES_AT + 1 + stale_after_s
    back = next(
        t
        for t in range(METER_BACK_AT, len(seconds))
        if (age := seconds[t].meter_age_s) is not None and age < 1.0
    )
    trusted = next(
        t
        for t in range(METER_BACK_AT, len(seconds))
        if not any("grid meter lost" in n for n in seconds[t].notes)
    )
    assert back < trusted <= back + 2 * stale_after_s + 1
