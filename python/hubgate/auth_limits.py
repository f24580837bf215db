"""Failed authentication, rate-limited per source address.

A source with `max_failures` failed attempts within `window_s` is refused without its
credentials being checked until the oldest of them is `window_s` old; a success does not
erase earlier failures. At most `max_sources` addresses are remembered (the least recent
is forgotten first), so a scan from many addresses costs bounded memory.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable

import trio


class FailedAttempts:
    """Failed attempts per source address, in a sliding window."""

    def __init__(
        self,
        *,
        max_failures: int = 10,
        window_s: float = 60.0,
        max_sources: int = 4096,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_sources = max_sources
        self.clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, source: str) -> float:
        """Seconds until `source` may try again; 0 when it may now."""
        times = self._failures.get(source)
        if times is None:
            return 0.0
        now = self.clock()
        while times and now - times[0] >= self.window_s:
            times.popleft()
        if len(times) < self.max_failures:
            return 0.0
        return self.window_s - (now - times[0])

    def failed(self, source: str) -> None:
        """Record a failed attempt of `source`."""
        times = self._failures.setdefault(source, deque(maxlen=self.max_failures))
        times.append(self.clock())
        self._failures.move_to_end(source)
        while len(self._failures) > self.max_sources:
            self._failures.popitem(last=False)
