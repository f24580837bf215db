"""Request statistics: counts and measured latency quantiles."""

from __future__ import annotations

import math
import random

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


def _exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_quantiles_within_one_percent_of_the_exact_ones(seed: int) -> None:
    rng = random.Random(seed)
    # a latency-like mixture: most answers in ~2 ms, a slow tail up to seconds
    values = [rng.lognormvariate(-6.2, 0.4) for _ in range(20_000)]
    values += [rng.uniform(0.05, 3.0) for _ in range(300)]
    stats = RequestStats()
    for v in values:
        stats.record_ok(v)
    for q in (0.0, 0.5, 0.9, 0.99, 0.999, 1.0):
        assert stats.percentile_s(q) == pytest.approx(_exact(values, q), rel=0.0101), q
    assert stats.ok == len(values)


def test_not_bucket_edges() -> None:
    """Latencies that would all fall in one 10-20 ms histogram bucket keep their spread."""
    stats = RequestStats()
    for ms in range(11, 20):
        stats.record_ok(ms / 1000)
    assert stats.percentile_s(0.5) == pytest.approx(0.015, rel=0.01)
    assert stats.percentile_s(1.0) == pytest.approx(0.019, rel=0.01)


def test_tiny_negative_nan_and_infinite_latencies() -> None:
    stats = RequestStats()
    stats.record_ok(0.0)
    stats.record_ok(-1.0)
    assert stats.percentile_s(0.5) == 1e-6  # under 1 us counts as 1 us
    stats.record_ok(math.nan)  # counted as the floor
    assert stats.percentile_s(1.0) == 1e-6
    stats.record_ok(math.inf)  # counted as the largest finite value, above every other
    percentile = stats.percentile_s(1.0)
    assert percentile is not None
    assert percentile > 1e300
    assert stats.percentile_s(0.0) == 1e-6
