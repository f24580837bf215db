"""PV, the stationary battery and the timeline of events."""

from __future__ import annotations

import pytest

from hubgate.sim.battery import BatteryModel
from hubgate.sim.pv import Cloud, PvModel
from hubgate.sim.scenario import Event
from hubgate.sim.timeline import Timeline


def pv(start_hour: float = 0.0) -> PvModel:
    return PvModel("pv", 0, 100.0, sunrise_hour=6.0, sunset_hour=18.0, start_hour=start_hour)


def test_pv_follows_the_sun() -> None:
    model = pv()
    hour = 3600.0
    assert model.step(3 * hour) == 0.0
    assert model.step(12 * hour) == pytest.approx(100.0)
    assert model.step(9 * hour) == pytest.approx(100.0 * 0.7071, rel=1e-3)
    assert model.step(20 * hour) == 0.0
    # The day wraps: 30 h after midnight is 6 in the morning of the next day.
    assert model.step(30 * hour) == 0.0
    assert model.step(36 * hour) == pytest.approx(100.0)
    assert pv(start_hour=12.0).step(0.0) == pytest.approx(100.0)


def test_a_cloud_dims_with_soft_edges() -> None:
    model = pv(start_hour=12.0)
    model.clouds.append(Cloud(start=100.0, end=400.0, depth=0.8))
    assert model.step(100.0) == pytest.approx(100.0, rel=1e-3)
    assert model.step(115.0) == pytest.approx(100.0 * (1 - 0.4), rel=1e-3)
    assert model.step(250.0) == pytest.approx(100.0 * 0.2, rel=1e-3)
    assert model.step(400.0) == pytest.approx(100.0, rel=1e-3)


def battery(soc: float) -> BatteryModel:
    return BatteryModel("bat", 0, 100.0, 50.0, 40.0, min_soc=0.1, max_soc=0.9, soc=soc)


def test_battery_keeps_to_its_power_limits() -> None:
    model = battery(0.5)
    model.setpoint_kw = 80.0
    assert model.step(1.0) == 50.0
    model.setpoint_kw = -80.0
    assert model.step(1.0) == -40.0
    model.setpoint_kw = 20.0
    model.step(3600.0)
    assert model.soc == pytest.approx(0.5 + 20.0 / 100.0 - 40.0 / 360_000 + 50.0 / 360_000)


def test_battery_keeps_to_its_soc_limits() -> None:
    full = battery(0.89)
    full.setpoint_kw = 50.0
    assert full.step(3600.0) == pytest.approx(1.0)  # only 1 kWh of room in an hour
    assert full.soc == pytest.approx(0.9)
    assert full.step(1.0) == 0.0
    empty = battery(0.1)
    empty.setpoint_kw = -40.0
    assert empty.step(1.0) == 0.0
    assert empty.soc == pytest.approx(0.1)


def test_timeline_hands_out_starts_and_ends_in_order() -> None:
    events = [
        Event(at_s=50, kind="grid-limit", percent=30, duration_s=100),
        Event(at_s=150, kind="csms-down"),
        Event(at_s=10, kind="meter-dies", meter="m"),
    ]
    timeline = Timeline(events)
    assert timeline.due(5) == []
    assert [(c.event.kind, c.starting) for c in timeline.due(60)] == [
        ("meter-dies", True),
        ("grid-limit", True),
    ]
    # At 150 s the limit step ends before the CSMS goes down.
    assert [(c.at_s, c.event.kind, c.starting) for c in timeline.due(1000)] == [
        (150, "grid-limit", False),
        (150, "csms-down", True),
    ]
    assert timeline.due(2000) == []
