"""The capacity model: interpolation of allocation time and the largest site per cycle."""

from __future__ import annotations

import pytest

from hubgate.benchmarking.capacity import HEADROOM, CostModel, loglog

MEASURED = {10: 5e-6, 100: 2e-5, 1_000: 1.5e-4, 10_000: 2e-3}


def model(modbus_read_s: float = 40e-6, station_share: float = 1e-5) -> CostModel:
    """Reads cost `modbus_read_s` at 10 devices at once, 1.5 times that at 1,000."""
    return CostModel(MEASURED, {10: modbus_read_s, 1_000: 1.5 * modbus_read_s}, station_share)


def test_allocation_time_is_the_measurement_at_measured_sizes() -> None:
    for size, seconds in MEASURED.items():
        assert model().allocation_at(size) == pytest.approx(seconds)


def test_allocation_time_interpolates_and_extrapolates_as_a_power_law() -> None:
    m = model()
    # Between 1,000 and 10,000 the time grows as n^log10(2e-3/1.5e-4).
    assert m.allocation_at(3_000) == pytest.approx(1.5e-4 * 3 ** (1.1249387366083))
    assert m.allocation_at(100_000) == pytest.approx(2e-3 * 10**1.1249387366083)
    sizes = [2, 10, 50, 100, 700, 1_000, 5_000, 10_000, 40_000]
    times = [m.allocation_at(n) for n in sizes]
    assert times == sorted(times)


@pytest.mark.parametrize("cycle_s", [1.0, 0.1, 0.01])
def test_max_connectors_is_the_boundary_of_the_budget(cycle_s: float) -> None:
    m = model()
    n = m.max_connectors(cycle_s)
    assert n > 0
    assert n % 2 == 0
    assert m.cycle_cost_s(n, cycle_s) <= HEADROOM * cycle_s
    assert m.cycle_cost_s(n + 2, cycle_s) > HEADROOM * cycle_s


def test_cost_adds_allocation_modbus_and_ocpp() -> None:
    m = model(modbus_read_s=1e-4, station_share=2e-5)
    # 2,000 connectors: 1,000 chargers, one read each at 1,000 devices, each an OCPP station.
    allocation = 2e-3 * 0.2**1.1249387366083
    assert m.cycle_cost_s(2_000, 1.0) == pytest.approx(allocation + 1_000 * 1.5e-4 + 1_000 * 2e-5)
    assert m.modbus_read_at(100) == pytest.approx(1e-4 * 1.5**0.5)


def test_extrapolation_never_falls_below_the_largest_measurement() -> None:
    noisy = {10: 40e-6, 100: 38e-6}
    assert loglog(noisy, 1_000) == pytest.approx(38e-6)
    assert loglog(noisy, 50) < 40e-6  # between measurements, the measurements rule
    assert loglog(noisy, 2) == pytest.approx(40e-6)


def test_slower_machine_meets_a_cycle_with_fewer_connectors() -> None:
    fast, slow = model(), model(modbus_read_s=400e-6)
    assert slow.max_connectors(0.1) < fast.max_connectors(0.1)
    assert model().max_connectors(0.1) < model().max_connectors(1.0)


def test_no_connector_fits_when_one_charger_exceeds_the_budget() -> None:
    assert model(modbus_read_s=1.0).max_connectors(0.1) == 0
