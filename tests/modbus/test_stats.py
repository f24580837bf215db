"""Request statistics: counts and measured latency quantiles."""

from __future__ import annotations

import pytest

from hubgate.modbus.stats import RequestStats


def test_counts_by_outcome() -> None:
    stats = RequestStats()
    stats.record_ok(0.001)
    stats.record_exception(0.002)
    stats.record_timeout()
    stats.record_error()
    assert (stats.requests, stats.ok, stats.exceptions, stats.timeouts, stats.errors) == (
        4,
        1,
        1,
        1,
        1,
    )
    assert stats.latency_sum_s == 0.003


def test_percentiles_are_the_measured_latencies() -> None:
    stats = RequestStats()
    assert stats.percentile_s(0.5) is None
    for _ in range(98):
        stats.record_ok(0.0008)
    stats.record_ok(0.03)
    stats.record_ok(0.04)
    assert stats.percentile_s(0.5) == pytest.approx(0.0008, rel=0.01)
    assert stats.percentile_s(0.99) == pytest.approx(0.03, rel=0.01)
    stats.record_ok(60.0)
    assert stats.percentile_s(1.0) == pytest.approx(60.0, rel=0.01)
