"""Request statistics per device (or OCPP charger): counts and latency quantiles.

Latencies go into a `QuantileSketch` (1 % relative error, at most ~1,000 buckets), so
recording is O(1), memory is bounded however long the gateway runs, and a p99 is the
p99 that was measured, not the edge of a histogram bucket.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hubgate.quantiles import QuantileSketch


@dataclass
class RequestStats:
    """Counters and latency quantiles of one device (or one connection)."""

    requests: int = 0
    ok: int = 0
    timeouts: int = 0
    exceptions: int = 0
    """Answered with an error: a Modbus exception response, an OCPP CallError."""
    errors: int = 0
    latency: QuantileSketch = field(default_factory=QuantileSketch)
    latency_sum_s: float = 0.0

    def record_ok(self, latency_s: float, requests: int = 1) -> None:
        """`requests` requests answered normally, each after `latency_s`."""
        self.requests += requests
        self.ok += requests
        self.latency.add(latency_s, requests)
        self.latency_sum_s += latency_s * requests

    def record_exception(self, latency_s: float) -> None:
        """A request answered with an error (Modbus exception response, OCPP CallError)."""
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
        self.latency.add(latency_s)
        self.latency_sum_s += latency_s

    def percentile_s(self, fraction: float) -> float | None:
        """The `fraction` quantile of the answers' latency (s); None without answers."""
        return self.latency.quantile(fraction)
