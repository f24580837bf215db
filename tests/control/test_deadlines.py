"""Sessions with an energy need and a departure: tracked, planned and served in time.

The planner over the in-memory site (`PlannedSite`: three 32 A chargers behind a
64 A board, time a plain number) with one session that needs more than its fair
share to leave on time; and `SessionDeadlines` alone for defaults and progress.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from hubgate.config.deadlines import Deadlines, Shortfall
from hubgate.control.deadlines import (
    DEADLINE_MARGIN_S,
    NeedSource,
    SessionDeadlines,
    SessionDefault,
    SocTarget,
)
from hubgate.control.limits import SITE, Limit, LimitSource
from hubgate.control.site_model import ConnectorInfo
from tests.support.loop_site import PlannedSite, SimSite

V = 230.0
NEED_KWH = 19.0
DEPARTURE_S = 3600.0


def delivered_kwh(site: PlannedSite, charger: str) -> float:
    index = site.planner.allocator.connector_index((charger, 1))
    return site.planner.horizon.deadlines.status(index, site.now).energy_kwh


def run_until_departure(with_deadline: bool) -> PlannedSite:
    site = PlannedSite.build(SimSite.build())
    site.planner.horizon.deadlines.wall_offset_s = 0.0
    if with_deadline:
        index = site.planner.allocator.connector_index(("cp-1", 1))
        site.planner.horizon.deadlines.set_need(index, NEED_KWH * 1000, DEPARTURE_S, NeedSource.API)
    site.run(DEPARTURE_S)
    return site


def test_a_deadline_beyond_the_fair_share_is_met_and_the_others_share_the_rest() -> None:
    # Fair share: 64 A / 3 = 21.3 A = 14.7 kW, 14.7 kWh in the hour: short of 19 kWh.
    plain = run_until_departure(with_deadline=False)
    assert delivered_kwh(plain, "cp-1") < NEED_KWH - 3
    planned = run_until_departure(with_deadline=True)
    assert delivered_kwh(planned, "cp-1") >= NEED_KWH * 0.99
    others = [delivered_kwh(planned, c) for c in ("cp-2", "cp-3")]
    assert abs(others[0] - others[1]) < 0.5  # the rest is shared fairly
    board_kwh = 64 * 3 * V / 1000  # what the board can carry in the hour
    assert sum(others) + delivered_kwh(planned, "cp-1") <= board_kwh
    assert max(c.draw_a for c in planned.sim.chargers) <= 32.0


def test_the_status_shows_need_departure_projection_and_risk() -> None:
    site = PlannedSite.build(SimSite.build())
    site.planner.horizon.deadlines.wall_offset_s = 1_000_000.0
    index = site.planner.allocator.connector_index(("cp-2", 1))
    # 40 kWh in 30 minutes at 22 kW at most: late whatever happens.
    site.planner.horizon.deadlines.set_need(index, 40_000.0, 1_000_000.0 + 1800, NeedSource.API)
    site.run(60)
    status = site.planner.horizon.deadlines.status(index, site.now)
    assert status.needed_kwh == pytest.approx(40.0)
    assert status.departure == pytest.approx(1_001_800.0)
    assert status.source is NeedSource.API
    assert status.laxity_s is not None
    assert status.laxity_s < 0
    assert status.shortfall_kwh > 40 - 22.08 * 0.5 - 0.5
    assert status.projected_finish is not None
    assert status.projected_finish > status.departure
    assert 0 < status.energy_kwh < 1.0
    assert status.planned_now_kw == pytest.approx(32 * 3 * V / 1000, rel=0.01)


def connectors(n: int) -> list[ConnectorInfo]:
    return [
        ConnectorInfo((f"cp-{i}", 1), f"cp-{i}#1", 0, (0, 1, 2), False, 32.0, "ocpp")
        for i in range(1, n + 1)
    ]


def test_a_site_default_gives_each_new_session_the_next_local_departure() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    deadlines = SessionDeadlines(
        connectors(2),
        V,
        defaults={0: SessionDefault(150_000.0, time(5, 30))},
        timezone="Europe/Berlin",
    )
    evening = datetime(2026, 3, 1, 22, 0, tzinfo=berlin).timestamp()
    deadlines.wall_offset_s = evening - 100.0  # loop time 100 s is 22:00 in Berlin
    deadlines.observe(0, True, 0.0, None, 100.0)
    deadlines.observe(1, True, 0.0, None, 100.0)
    status = deadlines.status(0, 100.0)
    assert status.source is NeedSource.SITE
    assert status.needed_kwh == 150.0
    assert status.departure == datetime(2026, 3, 2, 4, 30, tzinfo=UTC).timestamp()
    assert deadlines.status(1, 100.0).needed_kwh is None  # no default there


def test_progress_counts_from_the_session_start_and_unplugging_ends_the_need() -> None:
    deadlines = SessionDeadlines(connectors(1), V)
    deadlines.wall_offset_s = 0.0
    deadlines.set_need(0, 10_000.0, 7200.0, NeedSource.OCPP)  # before plug-in: the next session
    deadlines.observe(0, True, 11_000.0, None, 0.0)
    deadlines.observe(0, True, 11_000.0, None, 1800.0)  # 11 kW for half an hour
    assert deadlines.status(0, 1800.0).energy_kwh == pytest.approx(5.5)
    deadlines.observe(0, True, 11_000.0, 4_000.0, 1801.0)  # the charger's register from now on
    deadlines.observe(0, True, 11_000.0, 5_000.0, 1802.0)
    assert deadlines.status(0, 1802.0).energy_kwh == pytest.approx(6.5, abs=0.01)
    # 3.5 kWh left, 5398 s to go: with 50 kW to share it can wait (as late as possible).
    roomy = deadlines.plan(1802.0, 50_000.0, [3])
    assert roomy.floor_a is not None
    assert roomy.laxity_s is not None
    assert roomy.floor_a[0] == 0.0
    # Laxity to the planned finish, DEADLINE_MARGIN_S before the departure.
    left_s = 5398 - DEADLINE_MARGIN_S
    assert roomy.laxity_s[0] == pytest.approx(left_s - 3497 * 3600 / (32 * 3 * V), abs=1.0)
    # With 1 kW to share it cannot make it: it gets all of it now.
    tight = deadlines.plan(1802.0, 1000.0, [3])
    assert tight.floor_a is not None
    assert tight.floor_a[0] == pytest.approx(1000 / (3 * V))
    deadlines.observe(0, False, 0.0, None, 1900.0)
    assert deadlines.status(0, 1900.0).needed_kwh is None
    assert deadlines.plan(1900.0, 50_000.0, [3]).floor_a is None


def test_an_id_token_default_replaces_the_chargers_once_the_transaction_says_who() -> None:
    deadlines = SessionDeadlines(
        connectors(1),
        V,
        defaults={0: SessionDefault(100_000.0, time(6, 0))},
        tokens={"BUS-17": SessionDefault(250_000.0, time(4, 45))},
    )
    deadlines.wall_offset_s = datetime(2026, 3, 1, 21, 0, tzinfo=UTC).timestamp()
    deadlines.observe(0, True, 0.0, None, 0.0)
    assert deadlines.status(0, 0.0).needed_kwh == 100.0  # the charger's, until the token is known
    deadlines.identify(0, "BUS-17", 5.0)
    status = deadlines.status(0, 5.0)
    assert status.needed_kwh == 250.0
    assert status.departure == datetime(2026, 3, 2, 4, 45, tzinfo=UTC).timestamp()
    deadlines.identify(0, "BUS-17", 30_000.0)  # the same transaction, past its departure
    assert deadlines.status(0, 30_000.0).departure == status.departure
    deadlines.identify(0, "VAN-3", 31_000.0)  # no default of its own: the need stays
    assert deadlines.status(0, 31_000.0).needed_kwh == 250.0


LEFT_S = 3600 - DEADLINE_MARGIN_S


def test_an_ev_maximum_told_with_the_need_plans_it_at_that_and_ends_with_the_session() -> None:
    deadlines = SessionDeadlines(connectors(1), V)
    deadlines.wall_offset_s = 0.0
    # 10 kWh in an hour (planned to finish DEADLINE_MARGIN_S early): at the connector's
    # 22 kW it can wait; a 16 A EV takes 11 kW at most, so it may wait only
    # 3600 - 300 - 10/11.04 h = 39 s, and a 12 A one (8.3 kW) is late.
    deadlines.observe(0, True, 0.0, None, 0.0)
    deadlines.set_need(0, 10_000.0, 3600.0, NeedSource.API)
    assert deadlines.told_max_a(0) == math.inf
    laxity = deadlines.plan(0.0, 50_000.0, [3]).laxity_s
    assert laxity is not None
    assert laxity[0] == pytest.approx(LEFT_S - 10_000 * 3600 / (32 * 3 * V))
    assert deadlines.status(0, 0.0).ev_max_a is None
    deadlines.set_need(0, 10_000.0, 3600.0, NeedSource.API, ev_max_a=16.0)
    assert deadlines.told_max_a(0) == 16.0
    assert deadlines.status(0, 0.0).ev_max_a == 16.0  # shown in the API and dashboard
    laxity = deadlines.plan(0.0, 50_000.0, [3]).laxity_s
    assert laxity is not None
    assert laxity[0] == pytest.approx(LEFT_S - 10_000 * 3600 / (16 * 3 * V))
    deadlines.set_need(0, 10_000.0, 3600.0, NeedSource.API, ev_max_a=12.0)
    late = deadlines.plan(0.0, 50_000.0, [3])
    assert late.floor_a is not None
    assert late.floor_a[0] == pytest.approx(12.0)  # all it takes, now
    deadlines.observe(0, False, 0.0, None, 10.0)
    assert deadlines.told_max_a(0) == math.inf  # the next session's EV is another


def floor_now(deadlines: SessionDeadlines, now: float) -> float:
    """The first connector's floor with 5 kW to share (A per phase)."""
    floor = deadlines.plan(now, 5_000.0, [3]).floor_a
    return 0.0 if floor is None else floor[0]


def test_a_state_of_charge_to_reach_is_planned_from_the_evs_reported_state() -> None:
    deadlines = SessionDeadlines(connectors(1), V)
    deadlines.wall_offset_s = 0.0
    target = SocTarget(soc_percent=80.0, battery_wh=60_000.0)
    deadlines.set_need(0, 0.0, 7200.0, NeedSource.API, target=target)
    deadlines.observe(0, True, 11_000.0, None, 0.0)  # no state of charge yet: not planned
    assert deadlines.status(0, 0.0).needed_kwh == 0.0
    assert floor_now(deadlines, 0.0) == 0.0
    deadlines.observe(0, True, 11_000.0, None, 0.0, soc=50.0)  # 30 % of 60 kWh to go
    assert deadlines.status(0, 0.0).needed_kwh == pytest.approx(18.0)
    deadlines.observe(0, True, 11_000.0, None, 1800.0, soc=59.0)  # 5.5 kWh later
    status = deadlines.status(0, 1800.0)
    assert status.energy_kwh == pytest.approx(5.5)
    assert status.needed_kwh == pytest.approx(5.5 + 12.6)  # delivered + 21 % of 60 kWh
    # 12.6 kWh in the 5100 s left (less the margin) at 5 kW shared: late, all of it now.
    assert floor_now(deadlines, 1800.0) == pytest.approx(5_000.0 / (3 * V))
    deadlines.observe(0, True, 0.0, None, 1900.0, soc=81.0)  # there: nothing needed
    assert floor_now(deadlines, 1900.0) == 0.0


def test_short_of_energy_the_plan_runs_to_the_departures_and_a_lost_cause_keeps_the_margin() -> (
    None
):
    # Two sessions need 10 kWh each by 3600 s at up to 22 kW; 10 kW to share is 10 kWh in the
    # hour: the site is short, so (shortfall "even") no minute before the departures is left
    # unplanned.
    deadlines = SessionDeadlines(connectors(2), V, policy=Deadlines(shortfall=Shortfall.EVEN))
    deadlines.wall_offset_s = 0.0
    for i in range(2):
        deadlines.observe(i, True, 0.0, None, 0.0)
        deadlines.set_need(i, 10_000.0, 3600.0, NeedSource.API)
    at_max_s = 10_000 * 3600 / (32 * 3 * V)
    short = deadlines.plan(0.0, 10_000.0, [3, 3]).laxity_s
    assert short is not None
    assert short[0] == pytest.approx(3600 - at_max_s)
    assert deadlines.status(0, 0.0).shortfall_kwh + deadlines.status(1, 0.0).shortfall_kwh == (
        pytest.approx(10.0, abs=0.01)
    )
    ample = deadlines.plan(0.0, 50_000.0, [3, 3]).laxity_s
    assert ample is not None
    assert ample[0] == pytest.approx(LEFT_S - at_max_s)  # enough: finish the margin early
    # A session its own maximum cannot finish (30 kWh in the hour at 22 kW) plans to its
    # departure; with power enough for both, the other keeps its margin.
    deadlines.set_need(1, 30_000.0, 3600.0, NeedSource.API)
    both = deadlines.plan(0.0, 50_000.0, [3, 3])
    assert both.laxity_s is not None
    assert both.laxity_s[0] == pytest.approx(LEFT_S - at_max_s)
    assert both.laxity_s[1] < 0
    assert both.floor_a is not None
    assert both.floor_a[1] == pytest.approx(32.0)


def test_a_lease_below_the_cap_counts_once_in_the_plan() -> None:
    # cp-1 needs 15 kWh in the hour (22 kW at most). An API lease holds the grid at 60 A of
    # its 100 A: 41 kW to share, plenty. Counting the lease twice (its limit, and the 40 A it
    # takes as base load) left 20 A = 13.8 kW, and 2.4 kWh short.
    site = PlannedSite.build(SimSite.build())
    deadlines = site.planner.horizon.deadlines
    deadlines.wall_offset_s = 0.0
    index = site.planner.allocator.connector_index(("cp-1", 1))
    deadlines.set_need(index, 15_000.0, 3600.0, NeedSource.API)
    limit = Limit(phase_a=(60.0, 60.0, 60.0))
    site.planner.limits.set(SITE, LimitSource.API, limit, now=0.0, lease_s=None, origin="t")
    site.run(10)
    assert deadlines.status(index, site.now).shortfall_kwh == 0.0
