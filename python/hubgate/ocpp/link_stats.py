"""An OCPP charger's link health across its connections: what it sends, how it answers us.

Kept on its `Station` (so it outlives a reconnect) and fed by each `OcppSession`: every
frame that arrives (last message, message rate) and every call hubgate makes (latency of
its answer in a `RequestStats` sketch, CallErrors as rejected calls, timeouts).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from hubgate.modbus.stats import RequestStats

RATE_WINDOW_S = 60.0
"""Messages per minute are counted over this window."""


@dataclass
class OcppLinkStats:
    """One OCPP charger's messages and our calls to it (times on the Trio clock)."""

    calls: RequestStats = field(default_factory=RequestStats)
    """Our calls: answered (with latency), rejected (CallError: `exceptions`), timed out,
    failed (connection closed: `errors`)."""
    messages: int = 0
    """Frames received since hubgate started."""
    last_message_at: float | None = None
    _recent: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))

    def received(self, now: float) -> None:
        """A frame arrived at `now`."""
        self.messages += 1
        self.last_message_at = now
        self._recent.append(now)
        self._forget_before(now - RATE_WINDOW_S)

    def per_minute(self, now: float) -> float:
        """Frames received in the last `RATE_WINDOW_S`, per minute."""
        self._forget_before(now - RATE_WINDOW_S)
        return len(self._recent) * 60.0 / RATE_WINDOW_S

    def _forget_before(self, start: float) -> None:
        """Drop the arrival times before `start`: a station's window holds only its last
        minute, whether or not anything asks for its rate."""
        recent = self._recent
        while recent and recent[0] < start:
            recent.popleft()
