"""A base load rising faster than the EVs follow: the battery takes what it can still add,
the EVs give way ahead by their measured follow time for the rest, never paused for a
forecast; noise, a falling base and hubgate's own battery are no rise."""

from __future__ import annotations

import random
from array import array
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubgate.control.connector_runtime import ConnectorRuntime
from hubgate.control.failsafe import ChargerWatch
from hubgate.control.ramp_reserve import (
    EV_FOLLOW_S,
    MIN_LAGS,
    FollowLag,
    RampReserve,
)

RAMP_A_S = 3.6
"""A cloud over a 280 kW PV: 7.5 kW/s at 230 V on three phases."""


AT_ITS_LIMIT = [(0.0, 0.0, 0.0)]
"""The node's own limit, as the tests run it: reached already (no headroom left)."""


def evs(room_a: float) -> Callable[[], tuple[list[float], list[float]]]:
    """The EVs below the node: taking nothing (the limit is reached without them), `room_a`
    above their minimums."""
    return lambda: ([0.0] * 3, [room_a] * 3)


class Battery:
    """What the rule reads of the battery: its measured discharge and what it can add."""

    def __init__(self, discharge_a: float = 0.0, spare_a: float = 0.0) -> None:
        self.discharge_a, self.spare = discharge_a, spare_a

    def battery_a(self, node: int) -> float:
        return self.discharge_a

    def spare_a(self, node: int) -> float:
        return self.spare


def withhold(
    values: list[float],
    *,
    battery: Battery | None = None,
    room_a: float = 1000.0,
    cycle_s: float = 1.0,
    reserve: RampReserve | None = None,
) -> tuple[tuple[float, float, float], list[str]]:
    """Feed one metered node's base (the same on every phase) cycle by cycle; what the
    last cycle added to the EVs' base, and its notes."""
    reserve = reserve or RampReserve(["grid"], AT_ITS_LIMIT, 10.0)
    battery = battery or Battery()
    added, notes = (0.0, 0.0, 0.0), []
    for k, value in enumerate(values):
        base = array("d", [value] * 3)
        notes = reserve.withhold(k * cycle_s, base, [(value,) * 3], {0}, battery, evs(room_a))
        added = (base[0] - value, base[1] - value, base[2] - value)
    return added, notes


def ramp(n: int, per_s: float = RAMP_A_S, *, cycle_s: float = 1.0) -> list[float]:
    return [100.0 + per_s * cycle_s * k for k in range(n)]


def test_a_ramp_is_withheld_from_the_evs_for_their_follow_time() -> None:
    added, notes = withhold(ramp(12))
    assert added == pytest.approx((RAMP_A_S * EV_FOLLOW_S,) * 3)
    assert notes == [
        "grid base rising 3.6 A/s: 18.0 A kept from the EVs for their 5.0 s to follow "
        "(the battery can add 0.0 A)"
    ]


def test_sub_second_cycles_keep_one_sample_a_second() -> None:
    added, _ = withhold(ramp(120, cycle_s=0.1), cycle_s=0.1)
    assert added[0] == pytest.approx(RAMP_A_S * EV_FOLLOW_S, rel=0.02)


def test_the_battery_covers_first_the_evs_the_rest() -> None:
    """It answers a measured rise within a cycle: what it can still add is left to it."""
    assert withhold(ramp(12), battery=Battery(spare_a=50.0))[0] == (0.0, 0.0, 0.0)
    added, _ = withhold(ramp(12), battery=Battery(spare_a=10.0))
    assert added == pytest.approx((RAMP_A_S * EV_FOLLOW_S - 10.0,) * 3)


def test_headroom_under_the_nodes_own_limit_takes_the_rise_first() -> None:
    """18 A of rise over the follow time: a node 10 A under its own limit (a soft peak
    target is none) keeps 8 A from the EVs; one 30 A under, nothing."""
    for headroom, kept in ((10.0, 8.0), (30.0, 0.0)):
        reserve = RampReserve(["grid"], [(ramp(12)[-1] + headroom,) * 3], 10.0)
        added, _ = withhold(ramp(12), reserve=reserve)
        assert added == pytest.approx((kept,) * 3)


def test_a_forecast_cuts_the_evs_to_their_minimums_never_pauses_them() -> None:
    """Given 7 A above their minimums last cycle, of which this cycle's measured rise takes
    3.6 A: 3.4 A are left to withhold."""
    added, _ = withhold(ramp(12), room_a=7.0)
    assert added == pytest.approx((7.0 - RAMP_A_S,) * 3)
    assert withhold(ramp(12), room_a=3.0)[0] == (0.0, 0.0, 0.0)


def test_noise_a_falling_or_a_steady_base_is_no_rise() -> None:
    rng = random.Random(7)
    noisy = [110.0 * rng.uniform(0.9, 1.1) for _ in range(300)]
    reserve = RampReserve(["grid"], AT_ITS_LIMIT, 10.0)
    kept = []
    for k, value in enumerate(noisy):
        base = array("d", [value] * 3)
        reserve.withhold(float(k), base, [(value,) * 3], {0}, Battery(), evs(1000.0))
        kept.append(base[0] - value)
    assert sum(1 for amps in kept if amps > 0) < 0.1 * len(kept)
    assert sum(kept) / len(kept) < 0.01 * 110.0
    assert withhold([200.0 - 5.0 * k for k in range(12)])[0] == (0.0, 0.0, 0.0)
    assert withhold([150.0] * 12)[0] == (0.0, 0.0, 0.0)
    assert withhold([50.0, 80.0, 110.0])[0] == (0.0, 0.0, 0.0)  # too few samples


def test_a_step_or_a_spike_is_no_ramp() -> None:
    """A load switched on (or a start the meter shows before its charger's values do): the
    base is counted at its new level as measured, nothing more is coming."""
    for at in range(1, 12):
        step = [100.0] * at + [160.0] * (12 - at)
        assert withhold(step)[0] == (0.0, 0.0, 0.0), at
    assert withhold([100.0] * 8 + [140.0, 100.0, 100.0, 130.0])[0] == (0.0, 0.0, 0.0)


def test_hubgates_own_battery_turned_down_is_no_rise() -> None:
    """The battery stops discharging (a limit lifted): the metered base rises by what it
    gave, which hubgate commanded."""
    reserve = RampReserve(["grid"], AT_ITS_LIMIT, 10.0)
    for k in range(12):
        discharge = max(360.0 - 60.0 * k, 0.0)  # A per phase, falling to 0
        value = 100.0 - discharge
        base = array("d", [value] * 3)
        notes = reserve.withhold(
            float(k), base, [(value,) * 3], {0}, Battery(discharge), evs(1000.0)
        )
        assert list(base) == [value] * 3
        assert notes == []


def test_a_meter_not_trusted_starts_the_slope_anew() -> None:
    reserve = RampReserve(["grid"], AT_ITS_LIMIT, 10.0)
    withhold(ramp(12), reserve=reserve)
    base = array("d", [500.0] * 3)
    reserve.withhold(12.0, base, [(500.0,) * 3], set(), Battery(), evs(1000.0))  # lost
    assert withhold([500.0, 540.0], reserve=reserve)[0] == (0.0, 0.0, 0.0)


def test_the_follow_time_is_measured() -> None:
    lag = FollowLag(most_s=10.0)
    for seconds in (8.0, 12.0, None, 9.0, 11.0):  # None: not seen above its setpoint
        lag.followed(seconds)
    assert lag.seconds == EV_FOLLOW_S  # four measured: not yet enough
    lag.followed(10.0)
    assert MIN_LAGS == 5
    assert lag.seconds == pytest.approx((8 + 10 + 9 + 10 + 10) / 5)  # each at most 10 s
    reserve = RampReserve(["grid"], AT_ITS_LIMIT, 10.0)
    reserve.lag = lag
    assert withhold(ramp(12), reserve=reserve)[0][0] == pytest.approx(RAMP_A_S * 9.4)


def test_a_connector_reports_its_follow_time_only_once_seen_above() -> None:
    runtime = ConnectorRuntime(ChargerWatch(5.0, 32.0))
    runtime.lowered_at = 100.0
    assert runtime.followed(101.0) is None  # first reading already under: never above
    assert runtime.lowered_at is None
    runtime.lowered_at, runtime.seen_above = 200.0, True
    assert runtime.followed(206.5) == 6.5
    assert (runtime.lowered_at, runtime.seen_above) == (None, False)


@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(st.floats(-20.0, 20.0), min_size=1, max_size=40),
    spare=st.floats(0.0, 100.0),
    room=st.floats(0.0, 100.0),
    falling=st.booleans(),
)
def test_never_more_than_the_evs_can_give_nor_on_a_falling_base(
    steps: list[float], spare: float, room: float, falling: bool
) -> None:
    values, value = [], 300.0
    for step in steps:
        value += -abs(step) if falling else step
        values.append(value)
    reserve = RampReserve(["grid"], AT_ITS_LIMIT, 10.0)
    for k, value in enumerate(values):
        base = array("d", [value] * 3)
        reserve.withhold(float(k), base, [(value,) * 3], {0}, Battery(0.0, spare), evs(room))
        for p in range(3):
            added = base[p] - value
            assert 0.0 <= added <= room + 1e-9
            assert added <= max(20.0 * EV_FOLLOW_S - spare, 0.0) + 1e-9  # at most the rise
            if falling:
                assert added == 0.0
