"""Exponential backoff with jitter: how long to wait before trying again after failures.

    delay = Backoff(initial_s=0.2, maximum_s=10.0).delay(failures, rng)

A leaf: the Modbus masters, the CSMS links and the supervisor take their waits from it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter."""

    initial_s: float = 0.5
    maximum_s: float = 30.0
    factor: float = 2.0
    jitter: float = 0.2
    stable_after_s: float = 60.0
    """A task that ran this long before failing starts again from `initial_s`."""

    def delay(self, attempt: int, rng: random.Random) -> float:
        """The wait before restart number `attempt` (0-based)."""
        base = min(self.maximum_s, self.initial_s * self.factor**attempt)
        return base * (1 + self.jitter * (2 * rng.random() - 1))
