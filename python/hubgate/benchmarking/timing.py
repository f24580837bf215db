"""Timing a call the way pytest-benchmark does: rounds long enough for the timer, median."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Comparison:
    """One case: hubgate's cost, and the peer's where it is installed (seconds per operation)."""

    hubgate_s: float
    peer: str
    peer_s: float | None

    @property
    def ratio(self) -> float | None:
        """How many times faster hubgate is (peer time / hubgate time)."""
        return None if self.peer_s is None else self.peer_s / self.hubgate_s

    def as_json(self) -> dict[str, Any]:
        return {
            "hubgate_us": self.hubgate_s * 1e6,
            "peer": self.peer,
            "peer_us": None if self.peer_s is None else self.peer_s * 1e6,
            "ratio": self.ratio,
        }


def per_call_s(fn: Callable[[], object], *, min_round_s: float, rounds: int) -> float:
    """Median wall time of one call of `fn` over `rounds` rounds of at least `min_round_s` each."""
    fn()  # warm
    iterations = 1
    while True:  # calibrate: enough iterations that a round lasts min_round_s
        started = time.perf_counter()
        for _ in range(iterations):
            fn()
        elapsed = time.perf_counter() - started
        if elapsed >= min_round_s:
            break
        iterations *= 2 if elapsed <= 0 else max(2, min(10, int(min_round_s / elapsed) + 1))
    samples = [elapsed / iterations]
    for _ in range(rounds - 1):
        started = time.perf_counter()
        for _ in range(iterations):
            fn()
        samples.append((time.perf_counter() - started) / iterations)
    return statistics.median(samples)
