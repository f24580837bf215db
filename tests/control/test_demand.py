"""Demand charges: interval averages aligned to the clock, the month's peak, the cap, the
state across a restart, and the planner keeping each interval under its target."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trio
import trio.testing

from hubgate.control.deadlines import NeedSource
from hubgate.control.demand import DemandCharge, DemandState, DemandStore, level_w
from tests.support.loop_site import PlannedSite, SimSite, running_loop, site_config

T0 = datetime(2026, 3, 10, 8, 0, tzinfo=UTC).timestamp()
"""An interval start (15 minutes divide the hour)."""


def run(demand: DemandCharge, start: float, seconds: int, import_w: float) -> float:
    """One sample a second from `start`; the time of the next one."""
    for t in range(seconds):
        demand.sample(start + t, import_w)
    return start + seconds


def test_an_interval_is_averaged_aligned_to_the_clock_and_raises_the_months_peak() -> None:
    demand = DemandCharge(900, None)
    at = run(demand, T0 + 300, 600, 90_000.0)  # from 08:05: two thirds of the interval
    at = run(demand, at, 10, 30_000.0)  # the next interval began at 08:15
    assert demand.closed[0][0] == T0
    assert demand.closed[0][1] == pytest.approx(90.0 * 599 / 900 + 30 * 1 / 900, rel=1e-3)
    assert demand.state is not None
    assert demand.state.interval_start == T0 + 900
    assert demand.state.peak_kw == pytest.approx(demand.closed[0][1])


def test_projection_and_cap_keep_the_interval_at_the_target() -> None:
    demand = DemandCharge(900, 50.0)
    at = run(demand, T0, 451, 80_000.0) - 1  # half the interval at 80 kW: 10 kWh
    view = demand.view(at)
    assert view is not None
    assert view.average_kw == pytest.approx(80.0, rel=1e-3)
    assert view.projection_kw == pytest.approx(80.0, rel=1e-2)
    # 12.5 kWh allowed in all, 10 used, 450 s left: 20 kW on average.
    assert demand.cap_w(at) == pytest.approx(20_000, rel=1e-3)
    run(demand, at + 1, 450, demand.cap_w(at))  # to 08:15, when the interval closes
    assert demand.closed == [(T0, pytest.approx(50.0, rel=1e-3))]


def test_the_cap_spends_before_the_departures_what_they_would_leave_unused() -> None:
    # 15 kWh in the interval (60 kW). The site can import 90 kW now; a 30 kW session leaves
    # at 08:07:30, another at 08:10: spread evenly (60 kW) the last five minutes, with
    # 30 kW left to take, would leave 2.5 kWh unspent. Levelled: 80 kW until 08:07:30.
    leaving = [(T0 + 450, 30_000.0), (T0 + 600, 30_000.0)]
    demand = DemandCharge(900, 60.0)
    demand.sample(T0, 0.0)
    assert demand.cap_w(T0) == pytest.approx(60_000)
    assert demand.cap_w(T0, 0.0, 90_000.0, leaving) == pytest.approx(80_000)
    assert demand.cap_w(T0, 0.0, 90_000.0, []) == pytest.approx(60_000)
    # Two sessions leaving at the same moment both take their power with them.
    together = [(T0 + 450, 30_000.0), (T0 + 450, 30_000.0)]
    assert demand.cap_w(T0, 0.0, 90_000.0, together) == pytest.approx(90_000)  # 30 kW after
    at = T0
    while at < T0 + 900:  # the import follows the cap, as far as the site can take it
        most = 90_000.0 - sum(w for when, w in leaving if when <= at)
        demand.sample(at, min(demand.cap_w(at, 0.0, most, leaving), most))
        at += 1
    demand.sample(at, 0.0)
    assert demand.closed == [(T0, pytest.approx(60.0, rel=2e-3))]
    # Departures already past (the vehicle still plugged in) or after the interval do not
    # count; nor, with nothing known of the site's most, do any.
    assert demand.cap_w(T0 + 900, 0.0, 90_000.0, [(T0, 30_000.0), (T0 + 1800, 30_000.0)]) == (
        pytest.approx(demand.cap_w(T0 + 900))
    )
    assert demand.cap_w(T0 + 900, 0.0, math.inf, leaving) == pytest.approx(demand.cap_w(T0 + 900))


def test_levelling_spends_the_budget_over_what_each_span_can_take() -> None:
    assert level_w(100.0, [(10.0, 20.0)]) == pytest.approx(10.0)
    assert level_w(100.0, [(5.0, 30.0), (5.0, 5.0)]) == pytest.approx(15.0)
    assert level_w(100.0, [(2.0, 50.0), (3.0, 20.0), (5.0, 4.0)]) == pytest.approx(16.0)
    assert math.isinf(level_w(1000.0, [(5.0, 30.0), (5.0, 5.0)]))  # takes less than it may
    assert level_w(0.0, [(5.0, 30.0)]) == 0.0


def test_without_a_target_the_months_peak_so_far_is_the_bar_and_a_new_month_resets_it() -> None:
    demand = DemandCharge(900, None, timezone="Europe/Berlin")
    assert math.isinf(demand.cap_w(T0))
    run(demand, T0, 901, 40_000.0)
    assert demand.target_w() == pytest.approx(40_000, rel=1e-2)
    assert math.isfinite(demand.cap_w(T0 + 901))
    # 1 April 00:00 in Berlin is 31 March 22:00 UTC.
    april = datetime(2026, 3, 31, 22, 0, tzinfo=UTC).timestamp()
    run(demand, april - 900, 900, 10_000.0)
    run(demand, april, 2, 10_000.0)
    assert demand.state is not None
    assert demand.state.month == "2026-04"
    assert demand.state.peak_kw == 0.0
    assert math.isinf(demand.cap_w(april + 2))


def test_the_state_survives_a_restart_and_a_bad_file_is_no_state(tmp_path: Path) -> None:
    store = DemandStore(tmp_path / "demand.json")
    assert store.load() is None
    demand = DemandCharge(900, None)
    run(demand, T0, 901, 60_000.0)
    run(demand, T0 + 901, 300, 20_000.0)
    assert demand.state is not None
    store.save(demand.state)
    again = DemandCharge(900, None, state=store.load())
    again.sample(T0 + 1260, 20_000.0)  # back a minute later, same interval
    assert again.state is not None
    assert again.state.peak_kw == pytest.approx(60.0, rel=1e-2)
    assert again.state.interval_wh > 20_000 * 300 / 3600 * 0.99
    (tmp_path / "demand.json").write_text("{not json")
    assert store.load() is None


def test_a_restart_in_a_later_interval_counts_the_unfinished_one() -> None:
    state = DemandState("2026-03", 30.0, T0, 12_500.0, T0 + 600)  # 50 kW over 15 min so far
    demand = DemandCharge(900, None, state=state)
    demand.sample(T0 + 3600, 1_000.0)
    assert demand.state is not None
    assert demand.state.peak_kw == pytest.approx(50.0)
    assert demand.state.interval_start == T0 + 3600


DEMAND = '\n[demand]\ntarget_kw = 20\nstate_path = "unused.json"\n'


def test_the_planner_keeps_each_interval_under_the_target() -> None:
    site = PlannedSite.build(SimSite.build(), DEMAND)
    site.planner.horizon.deadlines.wall_offset_s = T0
    site.run(2 * 900 + 5)
    demand = site.planner.horizon.demand
    assert demand is not None
    averages = [average for _, average in demand.closed]
    assert len(averages) == 2
    # Three EVs would take 44 kW; the cap holds each interval at 20 kW (a cycle's lag).
    assert all(19.0 <= average <= 20.2 for average in averages), averages


async def test_the_loop_keeps_the_demand_state_across_a_restart(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    path = tmp_path / "demand.json"
    config = site_config(f'\n[demand]\ntarget_kw = 20\nstate_path = "{path}"\n')
    sim = SimSite.build()
    async with running_loop(config, sim.devices()) as loop:
        await trio.sleep(70)  # saved after a minute
        demand = loop.planner.horizon.demand
        assert demand is not None
        assert demand.state is not None
    saved = DemandStore(path).load()
    assert saved is not None
    assert saved.interval_wh > 0 or saved.peak_kw > 0  # an interval may have closed meanwhile
    async with running_loop(config, sim.devices()) as again:
        demand = again.planner.horizon.demand
        assert demand is not None
        assert demand.state is not None
        state = demand.state  # loaded, not started afresh
        assert state.peak_kw >= saved.peak_kw
        assert state.interval_start > saved.interval_start or state.interval_wh >= saved.interval_wh


def test_the_state_shows_the_cap_the_planner_applied() -> None:
    """/state's demand cap is the one the cycle applied (its lag counted, levelled over the
    departures), not the rest of the interval's budget spread evenly."""
    site = PlannedSite.build(SimSite.build(), DEMAND)
    deadlines = site.planner.horizon.deadlines
    deadlines.wall_offset_s = T0
    site.run(5)
    for i in range(3):  # every EV leaves 10 minutes into the interval
        deadlines.set_need(i, 50_000.0, T0 + 600, NeedSource.API)
    site.run(295)
    assert site.last is not None
    applied = site.last.inputs.peak_w  # the demand cap: the site has no other peak limit
    view = site.planner.horizon.demand_view(site.now - 1)  # the last cycle's time
    assert view is not None
    assert view.cap_kw is not None
    assert view.cap_kw * 1000 == pytest.approx(applied, abs=0.01)
    demand = site.planner.horizon.demand
    assert demand is not None
    assert demand.cap_w(T0 + site.now - 1) < applied - 5_000  # spread evenly: not it
