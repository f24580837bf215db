"""Request statistics per device: counts and a latency histogram.

The histogram has fixed logarithmic buckets (100 µs to 10 s, then the rest), so recording is
O(1) and memory is constant however long the gateway runs; percentiles are
read from the buckets (upper bound of the bucket that holds them).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

LATENCY_BUCKETS_S: tuple[float, ...] = (
    0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05,
    0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
)  # fmt: skip
"""Upper bounds of the latency buckets in seconds; one more bucket holds the rest."""


@dataclass
class RequestStats:
    """Counters and latency histogram of one device (or one connection)."""

    requests: int = 0
    ok: int = 0
    timeouts: int = 0
    exceptions: int = 0
    errors: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS_S) + 1))
    latency_sum_s: float = 0.0

    def record_ok(self, latency_s: float) -> None:
        """A request answered normally after `latency_s`."""
        self.requests += 1
        self.ok += 1
        self._latency(latency_s)

    def record_exception(self, latency_s: float) -> None:
        """A request answered with a Modbus exception response."""
        self.requests += 1
        self.exceptions += 1
        self._latency(latency_s)

    def record_timeout(self) -> None:
        """A request that got no answer before its deadline."""
        self.requests += 1
        self.timeouts += 1

    def record_error(self) -> None:
        """A request that failed otherwise (connection lost, bad frame)."""
        self.requests += 1
        self.errors += 1

    def _latency(self, latency_s: float) -> None:
        self.buckets[bisect.bisect_left(LATENCY_BUCKETS_S, latency_s)] += 1
        self.latency_sum_s += latency_s

    def percentile_s(self, fraction: float) -> float | None:
        """Upper bound of the bucket holding the `fraction` percentile; None without data."""
        total = sum(self.buckets)
        if total == 0:
            return None
        rank = max(1, round(fraction * total))
        running = 0
        for bound, count in zip(LATENCY_BUCKETS_S, self.buckets, strict=False):
            running += count
            if running >= rank:
                return bound
        return math.inf
