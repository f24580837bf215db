"""A rising base load is counted where it will be once the EVs follow; noise, a falling
base and hubgate's own battery are no trend."""

from __future__ import annotations

import random

import pytest

from hubgate.control.base_trend import AHEAD_S, BaseTrend


def feed(trend: BaseTrend, values: list[float], *, cycle_s: float = 1.0, own: float = 0.0):
    """Feed one node's base (the same on every phase) cycle by cycle; the last result."""
    out = (0.0, 0.0, 0.0)
    for k, value in enumerate(values):
        out = trend.ahead(0, k * cycle_s, (value, value, value), own)
    return out


def test_a_ramp_is_counted_ahead_by_its_slope() -> None:
    """A cloud: the base climbs 3.6 A/s (7.5 kW/s at 230 V on three phases)."""
    trend = BaseTrend()
    ramp = [100.0 + 3.6 * k for k in range(12)]
    assert feed(trend, ramp) == pytest.approx((ramp[-1] + 3.6 * AHEAD_S,) * 3)


def test_sub_second_cycles_keep_one_sample_a_second() -> None:
    trend = BaseTrend()
    ramp = [100.0 + 0.36 * k for k in range(120)]  # 0.1 s cycles, 3.6 A/s
    assert feed(trend, ramp, cycle_s=0.1)[0] == pytest.approx(ramp[-1] + 3.6 * AHEAD_S, rel=0.01)


def test_a_steady_noisy_or_falling_base_is_counted_as_measured() -> None:
    rng = random.Random(7)
    noisy = [110.0 * rng.uniform(0.9, 1.1) for _ in range(60)]
    trend = BaseTrend()
    added = [trend.ahead(0, float(k), (value,) * 3)[0] - value for k, value in enumerate(noisy)]
    assert max(added) < 0.2 * 110.0  # at most the noise's own range, ±10 %
    assert sum(added) / len(added) < 0.05 * 110.0
    falling = [200.0 - 5.0 * k for k in range(12)]
    assert feed(BaseTrend(), falling) == (falling[-1],) * 3
    assert feed(BaseTrend(), [50.0, 80.0]) == (80.0,) * 3  # too few samples for a slope


def test_hubgates_own_battery_turned_down_is_no_trend() -> None:
    """The battery stops discharging (a limit lifted): the base rises by what it gave, which
    hubgate commanded: counted as measured."""
    trend = BaseTrend()
    out = (0.0, 0.0, 0.0)
    for k in range(12):
        discharge = max(360.0 - 60.0 * k, 0.0)  # A per phase, falling to 0
        base = 100.0 - discharge
        out = trend.ahead(0, float(k), (base,) * 3, discharge)
    assert out == pytest.approx((100.0,) * 3)


def test_a_lost_meter_starts_the_trend_anew() -> None:
    trend = BaseTrend()
    feed(trend, [100.0 + 3.6 * k for k in range(12)])
    trend.lost(0)
    assert trend.ahead(0, 20.0, (500.0,) * 3) == (500.0,) * 3
