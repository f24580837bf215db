"""When a master may try its link again: exponential backoff with jitter after failures.

Time is an input (`now`, Trio's clock). A link that was working and drops may
reconnect at once; each further failure without a good response in between
waits longer, up to the backoff's ceiling.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import trio

from hubgate.backoff import Backoff
from hubgate.modbus.errors import ModbusConnectionError

DEFAULT_BACKOFF = Backoff(initial_s=0.2, maximum_s=10.0, factor=2.0, jitter=0.2)
"""Reconnect backoff of the masters unless configured otherwise."""


@dataclass
class ReconnectGate:
    """Counts consecutive link failures and says when the next attempt may start."""

    name: str
    backoff: Backoff = DEFAULT_BACKOFF
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0
    retry_at: float = -math.inf
    last_error: str | None = None

    def failed(self, now: float, error: str) -> None:
        """A connect attempt failed, or a link that never answered well broke."""
        self.retry_at = now + self.backoff.delay(self.failures, self.rng)
        self.failures += 1
        self.last_error = error

    def lost(self, now: float, error: str) -> None:
        """An established link broke: retry at once if it was healthy, else back off."""
        if self.failures == 0:
            self.failures = 1
            self.retry_at = now
            self.last_error = error
        else:
            self.failed(now, error)

    def succeeded(self) -> None:
        """A good response arrived: the link is healthy again."""
        self.failures = 0
        self.retry_at = -math.inf

    async def wait(self, deadline: float) -> None:
        """Sleep until an attempt is allowed; fail at once if that is after `deadline`."""
        if self.retry_at > deadline:
            wait_s = self.retry_at - trio.current_time()
            raise ModbusConnectionError(
                f"{self.name}: {self.last_error}; next attempt in {wait_s:.2f} s"
            )
        if self.retry_at > trio.current_time():
            await trio.sleep_until(self.retry_at)
