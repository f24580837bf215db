"""The latency sketch against exact quantiles of the same values."""

from __future__ import annotations

import math
import random

import pytest

from hubgate.quantiles import QuantileSketch


def _exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_quantiles_within_the_relative_accuracy(seed: int) -> None:
    rng = random.Random(seed)
    # a latency-like mixture: most answers in ~2 ms, a slow tail up to seconds
    values = [rng.lognormvariate(-6.2, 0.4) for _ in range(20_000)]
    values += [rng.uniform(0.05, 3.0) for _ in range(300)]
    sketch = QuantileSketch(relative_accuracy=0.01)
    for v in values:
        sketch.add(v)
    for q in (0.0, 0.5, 0.9, 0.99, 0.999, 1.0):
        exact = _exact(values, q)
        assert sketch.quantile(q) == pytest.approx(exact, rel=0.0101), q
    assert sketch.count == len(values)
    assert sketch.buckets < 1_100


def test_not_bucket_edges() -> None:
    """Values that would all fall in one 10-20 ms histogram bucket keep their spread."""
    sketch = QuantileSketch()
    for ms in range(11, 20):
        sketch.add(ms / 1000)
    assert sketch.quantile(0.5) == pytest.approx(0.015, rel=0.01)
    assert sketch.quantile(1.0) == pytest.approx(0.019, rel=0.01)


def test_empty_and_tiny_values() -> None:
    sketch = QuantileSketch(floor=1e-6)
    assert sketch.quantile(0.5) is None
    sketch.add(0.0)
    sketch.add(-1.0)
    assert sketch.quantile(0.5) == 1e-6
    with pytest.raises(ValueError, match="relative_accuracy"):
        QuantileSketch(relative_accuracy=1.0)
    for floor in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="floor"):
            QuantileSketch(floor=floor)
    sketch.add(math.nan)  # counted as the floor
    assert sketch.quantile(1.0) == 1e-6
    sketch.add(math.inf)  # counted as the largest finite value, above every other
    assert sketch.quantile(1.0) > 1e300
    assert sketch.quantile(0.0) == 1e-6


def test_memory_bounded_over_the_whole_range() -> None:
    """Values from under the floor to 1000 s, as a device's latencies spread over hours:
    the sketch holds about 8 bytes a bucket (a dict of ints held about 90)."""
    rng = random.Random(4)
    values = [10 ** rng.uniform(-7, 3) for _ in range(200_000)]
    sketch = QuantileSketch()
    for v in values:
        sketch.add(v)
    assert 1_000 < sketch.buckets < 1_100
    assert sketch.memory_bytes < 16 * 1024
    assert sketch.quantile(0.5) == pytest.approx(_exact(values, 0.5), rel=0.0101)
