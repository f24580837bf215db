"""A charger that reads a current it cannot carry (a register glitch, mA read as A; a
float32 register's NaN or inf) while its setpoint is not known (its last command failed or
was cut short at the deadline, or after a take-over): counted as its draw, the base load
read that much low and every charger was raised (74 A metered against 40 A for 10 cycles:
review, session 15). Such a reading counts 0 A, the charger keeps charging, and it is an
operator's event, once. A current within what EVs overshoot an offer by still counts
(`connector_runtime.OVERSHOOT_FACTOR`)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import trio

from hubgate.control.authority import Held
from hubgate.control.connector_runtime import ConnectorRuntime, plausible_a
from hubgate.control.failsafe import ChargerWatch
from hubgate.control.succession import counted_draw
from hubgate.devices.model import Reading
from hubgate.profiles.model import IecState, Quantity
from hubgate.state import EventLevel
from tests.support.drivers import PROFILES, charger, rig
from tests.support.events import RecordedEvents
from tests.support.loop_site import PlannedSite, grid_metered_site

LIMIT_A = 40.0  # 40 % of the 100 A connection
CURRENTS = (Quantity.CURRENT_L1, Quantity.CURRENT_L2, Quantity.CURRENT_L3)


def glitching(site: PlannedSite, charger_id: str, reported_a: float) -> list[bool]:
    """Make `charger_id` report `reported_a` on every phase while the returned flag is set."""
    sim = site.sim.charger(charger_id)
    sample, glitch = sim.sample, [False]

    def reading(now: float) -> Reading:
        r = sample(now)
        return replace(r, values=dict.fromkeys(CURRENTS, reported_a)) if glitch[0] else r

    sim.sample = reading  # type: ignore[method-assign]
    return glitch


def warnings(site: PlannedSite) -> list[tuple[str, str]]:
    events = site.planner.events
    assert isinstance(events, RecordedEvents)
    return [(s, m) for level, s, m in events.emitted if level is EventLevel.WARNING]


@pytest.mark.parametrize("reported_a", [500.0, 1e6, math.inf, -math.inf, math.nan])
def test_an_implausible_reading_raises_no_one_over_the_limit(reported_a: float) -> None:
    site = grid_metered_site(10.0, reports_every_s=0.0)
    glitch = glitching(site, "cp-1", reported_a)
    site.sim.box.percent = 40.0
    site.run(20)
    site.planner.connectors[0].sent_a = None  # its last command cut short at the deadline
    glitch[0] = True
    over, offered = [], []
    for _ in range(30):
        site.cycle()
        metered = site.sim.meter.current(site.now)
        if metered > LIMIT_A + 1e-6:
            over.append((site.now, metered))
        offered.append(site.setpoints()["cp-1"])
    assert over == []
    assert min(offered) >= 6.0  # it keeps charging (its draw counted in the base load)
    faults = [m for s, m in warnings(site) if s == "cp-1#1"]
    assert len(faults) == 1  # once, not per cycle
    assert "no current it can carry (at most 35.75 A)" in faults[0]


def test_a_glitch_every_other_read_is_one_event() -> None:
    site = grid_metered_site(10.0, reports_every_s=0.0)
    glitch = glitching(site, "cp-1", 500.0)
    site.run(5)
    for _ in range(40):
        glitch[0] = not glitch[0]
        site.cycle()
    assert len([s for s, _ in warnings(site) if s == "cp-1#1"]) == 1


def runtime_after(read_a: float, max_current_a: float = 32.0) -> tuple[ConnectorRuntime, bool]:
    runtime = ConnectorRuntime(ChargerWatch(3.0, max_current_a))
    reading = Reading(at=0.0, values=dict.fromkeys(CURRENTS, read_a), state=IecState.C)
    return runtime, runtime.take(reading, (0, 1, 2), plausible_a(max_current_a))


@pytest.mark.parametrize("read_a", [32.0, 34.0, 35.75])
def test_an_ev_overshooting_its_offer_still_counts_at_its_draw(read_a: float) -> None:
    """EVerest's EvseManager faults an EV only above (offer + 0.5 A) x 1.1, 35.75 A at
    32 A: up to that a reading is a draw, counted whole (unknown setpoint: no cap)."""
    runtime, turned = runtime_after(read_a)
    assert not turned
    assert runtime.known_draw(0.0, 10.0) == ((read_a,) * 3, (0.0, 0.0, 0.0))


@pytest.mark.parametrize("read_a", [35.8, 500.0, math.nan, math.inf])
def test_beyond_the_overshoot_the_draw_is_unknown_and_counts_zero(read_a: float) -> None:
    runtime, turned = runtime_after(read_a)
    assert turned
    assert runtime.implausible
    assert runtime.known_draw(0.0, 10.0) == ((0.0,) * 3, (0.0, 0.0, 0.0))
    # ... nor is it evidence of what the EV takes: no trim after EV_SETTLE_S
    runtime.sent_a = 32.0
    assert runtime.ev_estimate(True, 0.0, 0.0) == math.inf
    assert runtime.ev_estimate(True, 0.0, 60.0) == math.inf


@pytest.mark.parametrize("read_a", [math.nan, math.inf, 5000.0])
async def test_a_modbus_float32_current_register(read_a: float) -> None:
    """An Alfen's phase currents are float32 registers (register-maps.md 2.2); NaN, inf or
    a value no 32 A socket carries, read over Modbus TCP from the pymodbus twin, is no
    draw; 16 A beside it on the other phases changes nothing."""
    with trio.fail_after(10):
        async with rig(PROFILES["alfen-eve"]) as r:
            r.sim.set(Quantity.CURRENT_L1, read_a)
            r.sim.set(Quantity.CURRENT_L2, 16.0)
            r.sim.set(Quantity.CURRENT_L3, 16.0)
            reading = await charger(r).read()
    value = reading.values[Quantity.CURRENT_L1]
    assert value is not None
    assert value == read_a or (math.isnan(read_a) and math.isnan(value))
    runtime = ConnectorRuntime(ChargerWatch(3.0, 32.0))
    assert runtime.take(reading, (0, 1, 2), plausible_a(32.0))
    assert runtime.draw == (0.0, 0.0, 0.0)


@pytest.mark.parametrize("read_a", [33.0, 35.2])
def test_a_false_but_plausible_reading_counts_no_more_than_may_be_in_force(read_a: float) -> None:
    """cp-1 reads 33-35.2 A while it draws ~10 A, its last command cut short: it counts at
    most the current its last commands may have left in force (`ChargerWatch.
    last_command_a`), so the base load does not fall by the difference."""
    site = grid_metered_site(10.0, reports_every_s=0.0)
    glitch = glitching(site, "cp-1", read_a)
    site.sim.box.percent = 40.0
    site.run(20)
    runtime = site.planner.connectors[0]
    runtime.sent_a = None
    glitch[0] = True
    over = []
    for _ in range(15):
        site.cycle()
        if (metered := site.sim.meter.current(site.now)) > LIMIT_A + 1e-6:
            over.append((site.now, metered))
    assert over == []
    runtime.least_a, runtime.watch.last_command_a = None, 12.0  # none known since read
    assert runtime.known_draw(site.now, 10.0) == ((12.0,) * 3, (0.0, 0.0, 0.0))


@pytest.mark.parametrize(
    ("draw_a", "counted"),
    [
        ((17.0, 17.0, 0.0), (17.0, 17.0, 0.0)),
        ((20.0, 20.0, 20.0), (17.0, 17.0, 17.0)),  # above its last command: at most that
        ((500.0, 17.0, 17.0), None),
        ((math.nan, 0.0, 0.0), None),
    ],
)
def test_an_inherited_draw_counts_as_a_reading_here_would(
    draw_a: tuple[float, float, float], counted: tuple[float, float, float] | None
) -> None:
    assert counted_draw(Held(17.0, draw_a), 32.0) == counted
