"""Phase currents of a charger that measures none (hubgate.devices.derived_current)."""

from __future__ import annotations

import pytest

from hubgate.devices.derived_current import EnergyRate, currents_from_power, mean_voltage


def test_power_is_spread_over_the_phases_in_use() -> None:
    assert currents_from_power(11_040, 230, 3) == pytest.approx((16.0, 16.0, 16.0))
    assert currents_from_power(7_360, 230, 1) == pytest.approx((32.0, 0.0, 0.0))
    assert currents_from_power(4_600, 230, 2) == pytest.approx((10.0, 10.0, 0.0))
    assert currents_from_power(-500, 230, 3) == (0.0, 0.0, 0.0)  # feeding back: none drawn
    with pytest.raises(ValueError, match="phases"):
        currents_from_power(1_000, 230, 0)


def test_the_measured_voltage_stands_in_for_the_nominal_one() -> None:
    assert mean_voltage((228.0, 232.0, None), 230.0) == pytest.approx(230.0)
    assert mean_voltage((240.0, 0.0, 3.0), 230.0) == pytest.approx(240.0)  # not connected
    assert mean_voltage((None, None, None), 230.0) == 230.0


def test_energy_rate_over_a_span() -> None:
    rate = EnergyRate(span_s=10.0)
    assert rate.sample(0.0, 1_000.0) is None
    assert rate.sample(5.0, 1_015.0) is None  # not a span yet
    assert rate.sample(10.0, 1_030.0) == pytest.approx(10_800.0)  # 30 Wh in 10 s
    assert rate.sample(12.0, 1_036.0) == pytest.approx(10_800.0)  # kept until the next span
    assert rate.sample(20.0, 1_050.0) == pytest.approx(7_200.0)
    assert rate.sample(21.0, 3.0) is None  # the register went back (reset): start over
    with pytest.raises(ValueError, match="span_s"):
        EnergyRate(span_s=0)
