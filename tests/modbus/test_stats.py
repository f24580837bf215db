"""Request statistics: counts and bucketed percentiles."""

from __future__ import annotations

import math

from hubgate.modbus.stats import LATENCY_BUCKETS_S, RequestStats


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


def test_percentiles_from_buckets() -> None:
    stats = RequestStats()
    assert stats.percentile_s(0.5) is None
    for _ in range(98):
        stats.record_ok(0.0008)  # bucket <= 1 ms
    stats.record_ok(0.03)  # bucket <= 50 ms
    stats.record_ok(0.04)
    assert stats.percentile_s(0.5) == 0.001
    assert stats.percentile_s(0.99) == 0.05
    stats.record_ok(60.0)
    assert stats.percentile_s(1.0) == math.inf


def test_buckets_are_increasing() -> None:
    assert list(LATENCY_BUCKETS_S) == sorted(set(LATENCY_BUCKETS_S))
