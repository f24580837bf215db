"""Prices as an input: the series, which slots are cheap for a session, and a session with
slack that waits for the cheap hour and still leaves with its energy."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hubgate.control.deadlines import NeedSource, SessionDeadlines
from hubgate.control.prices import PriceSeries, cheap_now
from hubgate.control.site_model import ConnectorInfo
from tests.support.loop_site import PlannedSite, SimSite

HOUR = 3600.0


def test_a_series_replaces_what_it_covers_and_averages_over_a_slot() -> None:
    series = PriceSeries()
    series.put(0.0, HOUR, [0.30, 0.20, 0.10])
    series.put(HOUR, 900.0, [0.40, 0.40])  # the second hour's first half, in 15 minutes
    assert [p for _, _, p in series.points()] == [0.30, 0.40, 0.40, 0.10]
    assert series.at(HOUR + 1000) == 0.40
    assert series.at(5 * HOUR) is None
    # 00:30-01:30 covers half of the 0.30 hour and the two 0.40 quarters.
    assert series.slot_prices([1800.0, 2.5 * HOUR], [1.5 * HOUR, 3.5 * HOUR]) == [
        pytest.approx(0.35),
        None,  # runs past the known prices
    ]
    series.clear()
    assert not series


def test_the_present_slot_is_cheap_when_it_is_among_the_cheapest_the_need_takes() -> None:
    slots = [900.0] * 8
    prices = [0.30, 0.30, 0.10, 0.10, 0.40, 0.40, 0.10, 0.10]
    # 11 kW for up to 2 h; 5.5 kWh is half an hour: the four 0.10 slots are plenty.
    assert not cheap_now(prices, slots, 2 * HOUR, 5_500.0, 11_000.0)
    # 16.5 kWh is an hour and a half: the 0.10 slots (one hour) do not cover it.
    assert cheap_now(prices, slots, 2 * HOUR, 16_500.0, 11_000.0)
    # Leaving in 45 minutes: only one cheap slot before it.
    assert cheap_now(prices, slots, 0.75 * HOUR, 5_500.0, 11_000.0)
    assert cheap_now([None, *prices[1:]], slots, 2 * HOUR, 5_500.0, 11_000.0)  # unknown now
    assert cheap_now([*prices[2:], 0.5, 0.5], slots, 2 * HOUR, 5_500.0, 11_000.0)


@pytest.mark.timeout(300)  # three hours of cycles, without Trio
def test_a_session_with_slack_waits_for_the_cheap_hour_and_leaves_with_its_energy() -> None:
    monday = datetime(2026, 3, 2, 10, 0, tzinfo=UTC).timestamp()
    site = PlannedSite.build(SimSite.build())
    planner = site.planner
    planner.horizon.deadlines.wall_offset_s = monday
    planner.horizon.prices.put(monday, HOUR, [0.40, 0.10, 0.40])
    index = planner.allocator.connector_index(("cp-1", 1))
    planner.horizon.deadlines.set_need(index, 15_000.0, monday + 3 * HOUR, NeedSource.API)
    charger = site.sim.charger("cp-1")
    drawn, waiting = [], []
    for _ in range(3):
        before = planner.horizon.deadlines.status(index, site.now).energy_kwh
        site.run(HOUR)
        drawn.append(planner.horizon.deadlines.status(index, site.now).energy_kwh - before)
        assert site.last is not None
        waiting.append(any("wait for cheaper slots" in note for note in site.last.notes))
        assert charger.draw_a <= 32.0
    # 10:00-11:00 is dear: it waits at its minimum (6 A on 3 phases: 4.1 kWh), not paused.
    assert drawn[0] <= 6 * 3 * 230 / 1000 + 0.05
    assert drawn[1] >= 15.0 - drawn[0] - 0.2  # 11:00-12:00 is cheap: the rest of its need
    assert sum(drawn) >= 15.0 * 0.99
    assert waiting == [True, False, False]


def test_short_of_energy_no_session_waits_for_a_cheaper_slot() -> None:
    deadlines = SessionDeadlines(
        [
            ConnectorInfo((f"cp-{i}", 1), f"cp-{i}#1", 0, (0, 1, 2), False, 32.0, "ocpp")
            for i in (1, 2)
        ],
        230.0,
    )
    deadlines.wall_offset_s = 0.0
    prices = PriceSeries()
    prices.put(0.0, HOUR, [0.40, 0.10, 0.40])
    for i in range(2):
        deadlines.observe(i, True, 0.0, None, 0.0)
        deadlines.set_need(i, 5_000.0, 3 * HOUR, NeedSource.API)
    # 5 kWh each with 10 kW to share: the cheap hour holds both, so both wait in the dear one.
    ceiling = deadlines.plan(0.0, 10_000.0, [3, 3], prices).ceiling_a
    assert ceiling is not None
    assert all(c < 32.0 for c in ceiling)
    # 20 kWh each is more than the 30 kWh the three hours hold: every kWh the dear hour
    # gives is one less short.
    for i in range(2):
        deadlines.set_need(i, 20_000.0, 3 * HOUR, NeedSource.API)
    short = deadlines.plan(0.0, 10_000.0, [3, 3], prices)
    assert short.ceiling_a is None
    assert sum(deadlines.status(i, 0.0).shortfall_kwh for i in range(2)) == pytest.approx(
        10.0, abs=0.01
    )
