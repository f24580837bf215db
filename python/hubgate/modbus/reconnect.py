"""When a master may try its link again: exponential backoff with jitter after failures.

Time is an input (`now`, Trio's clock). A link that was working and drops may
reconnect at once; each further failure without a good response in between
waits longer, up to the backoff's ceiling, or up to `REFUSED_RETRY_S` while the
device refuses.
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

REFUSED_RETRY_S = 1.0
"""The longest wait before dialling again a device that refused the connection. A refusal
costs the device one reset; a charger that reboots refuses until its server listens, and
is controlled again within a second of that, not at the end of a backoff grown to its
ceiling. A device that does not answer at all backs off to the ceiling."""


@dataclass
class ReconnectGate:
    """Counts consecutive link failures and says when the next attempt may start."""

    name: str
    backoff: Backoff = DEFAULT_BACKOFF
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0
    retry_at: float = -math.inf
    last_error: str | None = None

    def failed(self, now: float, error: str, *, refused: bool = False) -> None:
        """A connect attempt failed (`refused`: the device said no at once), or a link that
        never answered well broke."""
        delay = self.backoff.delay(self.failures, self.rng)
        self.retry_at = now + (min(delay, REFUSED_RETRY_S) if refused else delay)
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
