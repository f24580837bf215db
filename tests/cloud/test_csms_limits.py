"""Which limit a CSMS charging profile sets now, and until when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trio

from hubgate.cloud.csms_limits import CsmsLimits, ProfileStep, profile_step
from hubgate.control.limits import Limit, LimitBook, LimitSource

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def profile(periods: list[tuple[int, float]], unit: str = "A", **extra: Any) -> dict[str, Any]:
    schedule = {
        "chargingRateUnit": unit,
        "chargingSchedulePeriod": [{"startPeriod": s, "limit": v} for s, v in periods],
    }
    schedule |= extra.pop("schedule", {})
    return {"chargingProfileKind": "Relative", "chargingSchedule": schedule, **extra}


def amps(value: float) -> Limit:
    return Limit(phase_a=(value, value, value))


def test_relative_schedule_steps_through_its_periods() -> None:
    p = profile([(0, 16), (600, 8)])
    assert profile_step(p, T0, T0) == ProfileStep(amps(16), T0 + timedelta(seconds=600))
    assert profile_step(p, T0, T0 + timedelta(seconds=601)) == ProfileStep(amps(8), None)


def test_watts_become_a_power_limit_and_duration_ends_it() -> None:
    p = profile([(0, 11000)], unit="W", schedule={"duration": 60})
    assert profile_step(p, T0, T0) == ProfileStep(Limit(power_kw=11.0), T0 + timedelta(seconds=60))
    assert profile_step(p, T0, T0 + timedelta(seconds=61)) == ProfileStep(None, None)


def test_absolute_schedule_in_the_future_sets_nothing_until_it_starts() -> None:
    start = T0 + timedelta(hours=1)
    p = profile([(0, 10)], chargingProfileKind="Absolute", schedule={"startSchedule": stamp(start)})
    assert profile_step(p, T0, T0) == ProfileStep(None, start)
    assert profile_step(p, T0, start) == ProfileStep(amps(10), None)


def test_valid_to_bounds_the_lease_and_valid_from_delays_it() -> None:
    p = profile([(0, 20)], validTo=stamp(T0 + timedelta(minutes=5)))
    assert profile_step(p, T0, T0) == ProfileStep(amps(20), T0 + timedelta(minutes=5))
    assert profile_step(p, T0, T0 + timedelta(minutes=5)) == ProfileStep(None, None)
    later = profile([(0, 20)], validFrom=stamp(T0 + timedelta(minutes=1)))
    assert profile_step(later, T0, T0) == ProfileStep(None, T0 + timedelta(minutes=1))


def test_daily_recurring_schedule_repeats() -> None:
    start = T0 - timedelta(days=3)
    p = profile(
        [(0, 10), (3600, 16)],
        chargingProfileKind="Recurring",
        recurrencyKind="Daily",
        schedule={"startSchedule": stamp(start)},
    )
    now = T0 + timedelta(minutes=30)
    assert profile_step(p, T0, now) == ProfileStep(amps(10), T0 + timedelta(hours=1))
    now = T0 + timedelta(hours=2)
    assert profile_step(p, T0, now) == ProfileStep(amps(16), T0 + timedelta(days=1))


async def test_limits_follow_periods_in_the_book_and_clear() -> None:
    book = LimitBook()
    limits = CsmsLimits(book)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(limits.run)
            limits.set_profile("cp#1", profile([(0, 16), (1, 6)]), "test")
            await trio.sleep(0.05)
            assert book.in_force("cp#1", trio.current_time()).limit == amps(16)
            await trio.sleep(1.0)
            in_force = book.in_force("cp#1", trio.current_time())
            assert in_force.limit == amps(6)
            assert in_force.sources == (LimitSource.CSMS,)
            assert limits.targets() == ["cp#1"]
            assert limits.clear("cp#1", "test")
            assert book.in_force("cp#1", trio.current_time()).sources == ()
            assert not limits.clear("cp#1", "test")
            nursery.cancel_scope.cancel()


async def test_a_profile_with_a_negative_limit_is_refused_and_changes_nothing() -> None:
    book = LimitBook()
    limits = CsmsLimits(book)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(limits.run)
            limits.set_profile("cp#1", profile([(0, 16)]), "test")
            await trio.sleep(0.01)
            with pytest.raises(ValueError, match="unusable charging profile"):
                limits.set_profile("cp#1", profile([(0, 16), (60, -5)]), "test")
            assert book.in_force("cp#1", trio.current_time()).limit == amps(16)
            nursery.cancel_scope.cancel()
