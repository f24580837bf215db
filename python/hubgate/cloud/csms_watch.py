"""Whether the cloud CSMS is there, as operator events: lost (with what waits for it), back.

The CSMS counts as there while any upstream link (the gateway's own, a charger's) is
connected. It is lost once every link has been down for `lost_after_s` (a reconnect of
a few seconds is no event), or, at start-up, when no link connected within
`first_connect_s` (`CsmsProxy.watch` runs it). The events say how many messages the durable queue holds for it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hubgate.state import EventLevel

LOST_AFTER_S = 10.0
FIRST_CONNECT_S = 30.0


@dataclass(frozen=True)
class CsmsChange:
    """An event due: the CSMS lost, or back after `down_s`."""

    lost: bool
    down_s: float

    def text(self, url: str, queued: int) -> tuple[EventLevel, str]:
        """Its level and message, with the messages the queue holds."""
        waiting = f"{queued} message{'' if queued == 1 else 's'} queued for it"
        if self.lost:
            return (
                EventLevel.WARNING,
                f"CSMS at {url} unreachable for {self.down_s:.0f} s: chargers run on local "
                f"rules, {waiting}",
            )
        return (
            EventLevel.INFO,
            f"CSMS at {url} reachable again after {self.down_s:.0f} s: {waiting}, replayed in "
            "order",
        )


@dataclass
class CsmsWatch:
    """Sans-IO: told every second or so whether each link is up; says when an event is due."""

    lost_after_s: float = LOST_AFTER_S
    first_connect_s: float = FIRST_CONNECT_S
    up_at: float | None = None
    """When a link was last seen up (start-up until one is)."""
    connected_once: bool = False
    reported_lost: bool = False

    def update(self, links: Iterable[bool], now: float) -> CsmsChange | None:
        """Each link's state now; the event due, if any. Without links (no charger
        connected, no gateway identity) nothing needs the CSMS: no event."""
        states = list(links)
        if self.up_at is None or not states:
            self.up_at = now
        down_s = now - self.up_at
        if any(states):
            self.up_at, self.connected_once = now, True
            if self.reported_lost:
                self.reported_lost = False
                return CsmsChange(lost=False, down_s=down_s)
            return None
        wait = self.lost_after_s if self.connected_once else self.first_connect_s
        if self.reported_lost or down_s < wait:
            return None
        self.reported_lost = True
        return CsmsChange(lost=True, down_s=down_s)
