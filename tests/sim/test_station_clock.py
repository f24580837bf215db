"""A simulated station's clock: the CSMS's while linked, simulated time when cut off (sans-IO)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hubgate.sim.station_clock import StationClock

ORIGIN = datetime(2026, 1, 1, 12, tzinfo=UTC)


def _s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


def test_before_any_csms_it_runs_on_simulated_time_from_the_origin() -> None:
    clock = StationClock(ORIGIN)
    assert not clock.linked
    assert clock.now(ORIGIN + _s(1), 40.0) == ORIGIN + _s(40)


def test_linked_it_follows_the_csms_whatever_the_simulation_speed() -> None:
    clock = StationClock(ORIGIN)
    csms_ahead = _s(3600)
    clock.sync(ORIGIN + _s(10) + csms_ahead, sent=ORIGIN + _s(9.9), received=ORIGIN + _s(10.1))
    clock.link_up()
    assert clock.linked
    assert clock.now(ORIGIN + _s(20), 400.0) == ORIGIN + _s(20) + csms_ahead


def test_cut_off_it_runs_on_from_the_csms_time_at_the_simulation_rate() -> None:
    clock = StationClock(ORIGIN)
    clock.sync(ORIGIN + _s(10), sent=ORIGIN + _s(10), received=ORIGIN + _s(10))
    clock.link_up()
    clock.link_down(ORIGIN + _s(20), 80.0)
    assert not clock.linked
    assert clock.now(ORIGIN + _s(21), 80.0) == ORIGIN + _s(20)
    assert clock.now(ORIGIN + _s(22), 90.0) == ORIGIN + _s(30)  # 10 simulated s later
    clock.link_down(ORIGIN + _s(25), 95.0)  # already down: the anchor stays
    assert clock.now(ORIGIN + _s(25), 95.0) == ORIGIN + _s(35)
    clock.link_up()  # connected again: the CSMS's clock
    assert clock.now(ORIGIN + _s(26), 96.0) == ORIGIN + _s(26)


def test_sync_takes_the_middle_of_the_exchange() -> None:
    clock = StationClock(ORIGIN)
    clock.sync(ORIGIN + _s(100), sent=ORIGIN + _s(10), received=ORIGIN + _s(12))
    clock.link_up()
    assert clock.now(ORIGIN + _s(11), 0.0) == ORIGIN + _s(100)
