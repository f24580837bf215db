"""The operator's event log: one place every subsystem reports to, persisted, aggregated,
logged and streamed.

    log.emit(EventLevel.WARNING, "cp-7#1", "unreachable (no answer)",
             category=EventCategory.DEVICE, burst=Burst("device-lost", "{n} devices unreachable",
                                                        path=("feeder-3", "tr1", "grid")))

An event with a `Burst` waits until no other event of its kind (`Burst.key`) has come for
`quiet_s` (or for `longest_s` since the first): one alone is logged as it came, several as
one event naming where they are ("34 devices unreachable on feeder-3", the deepest node
every member sits under) with every member listed. So an outage of 213 devices is one
warning, and their return one info event, instead of 426 entries pushing the cause out.
Every stored event is written to the `RecordStore`, logged on the `hubgate.events` logger
at its severity (the same line `hubgate run` prints) and wakes the live stream's readers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import trio

from hubgate.records.store import EventQuery, RecordStore
from hubgate.state import Event, EventCategory, EventLevel

LOG = logging.getLogger("hubgate.events")

QUIET_S = 5.0
"""A burst is logged once no event of its kind came for this long."""
LONGEST_S = 30.0
"""... or this long after its first event, whatever still comes."""

RECENT_ALL = 30
RECENT_WARNINGS = 20
"""The recent events in the published state: the newest of all and the newest warnings
and alarms, so a burst of info never hides the cause."""

_LOG_LEVEL = {
    EventLevel.INFO: logging.INFO,
    EventLevel.WARNING: logging.WARNING,
    EventLevel.ALARM: logging.ERROR,
}


@dataclass(frozen=True)
class Burst:
    """Events of one kind that come together are logged as one."""

    key: str
    """Events with the same key merge while the burst is open."""
    summary: str
    """The merged event's message, `{n}` the count: "{n} devices unreachable"."""
    path: tuple[str, ...] = ()
    """The member's node and every node above it, nearest first ("on feeder-3")."""


@dataclass
class _Pending:
    burst: Burst
    category: EventCategory
    severity: EventLevel
    first_at: float
    last_at: float
    wall_first: float
    wall_last: float
    members: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)
    """(subject, message, path) of each member."""


class EventLog:
    """Stores, merges, logs and streams the operator's events (module docstring)."""

    def __init__(
        self,
        store: RecordStore | None = None,
        *,
        clock: Callable[[], float] = trio.current_time,
        wall_clock: Callable[[], float] = time.time,
        quiet_s: float = QUIET_S,
        longest_s: float = LONGEST_S,
    ) -> None:
        """`store` None: in memory; `clock` is monotonic (the bursts' timing)."""
        self.store = store or RecordStore()
        self.clock = clock
        self.wall_clock = wall_clock
        self.quiet_s = quiet_s
        self.longest_s = longest_s
        self._pending: dict[str, _Pending] = {}
        self._newest_id = 0
        self._changed = trio.Event()
        self._recent = self._load_recent()

    def emit(
        self,
        level: EventLevel,
        subject: str,
        message: str,
        *,
        category: EventCategory = EventCategory.CONTROL,
        burst: Burst | None = None,
    ) -> None:
        """Report an event now: stored at once, or held with others of its burst."""
        now, wall = self.clock(), self.wall_clock()
        self.tick()
        if burst is None:
            event = Event(
                at=wall, severity=level, category=category, subject=subject, message=message
            )
            self._store(event)
            return
        pending = self._pending.get(burst.key)
        if pending is None:
            pending = self._pending[burst.key] = _Pending(
                burst, category, level, now, now, wall, wall
            )
        pending.last_at, pending.wall_last = now, wall
        if level.rank > pending.severity.rank:
            pending.severity = level
        pending.members.append((subject, message, burst.path))

    def tick(self) -> None:
        """Log the bursts that are complete (quiet for `quiet_s`, or open `longest_s`)."""
        now = self.clock()
        for key, pending in list(self._pending.items()):
            if now - pending.last_at >= self.quiet_s or now - pending.first_at >= self.longest_s:
                del self._pending[key]
                self._store(_merged(pending))

    def flush(self) -> None:
        """Log every open burst now (at shutdown)."""
        for pending in self._pending.values():
            self._store(_merged(pending))
        self._pending.clear()

    def _store(self, event: Event) -> None:
        stored = self.store.add_event(event, self.wall_clock())
        self._newest_id = stored.id
        self._recent = _recent((*self._recent, stored))
        LOG.log(_LOG_LEVEL[stored.severity], "%s", stored.line(), extra={"event": stored})
        self._changed.set()
        self._changed = trio.Event()

    def _load_recent(self) -> tuple[Event, ...]:
        events = self.store.events(EventQuery(limit=RECENT_ALL))
        warnings = self.store.events(EventQuery(severity=EventLevel.WARNING, limit=RECENT_WARNINGS))
        if events:
            self._newest_id = events[-1].id
        return _recent((*warnings, *events))

    @property
    def recent(self) -> tuple[Event, ...]:
        """The newest events, newest last, the newest warnings and alarms always among them."""
        return self._recent

    def query(self, query: EventQuery) -> list[Event]:
        """Stored events that match, oldest first."""
        return self.store.events(query)

    async def wait_newer(self, seen_id: int) -> int:
        """Wait until an event newer than `seen_id` is stored; the newest id."""
        while self._newest_id <= seen_id:
            await self._changed.wait()
        return self._newest_id


def _recent(events: tuple[Event, ...]) -> tuple[Event, ...]:
    by_id = {e.id: e for e in events}
    ordered = sorted(by_id.values(), key=lambda e: e.id)
    warnings = [e for e in ordered if e.severity is not EventLevel.INFO][-RECENT_WARNINGS:]
    keep = {e.id for e in ordered[-RECENT_ALL:]} | {e.id for e in warnings}
    return tuple(e for e in ordered if e.id in keep)


def _merged(pending: _Pending) -> Event:
    """One member as it came; several as one event naming where they are."""
    if len(pending.members) == 1:
        subject, message, _ = pending.members[0]
        return Event(
            at=pending.wall_first,
            severity=pending.severity,
            category=pending.category,
            subject=subject,
            message=message,
        )
    subjects = tuple(dict.fromkeys(subject for subject, _, _ in pending.members))
    where = _common_node([path for _, _, path in pending.members])
    message = pending.burst.summary.format(n=len(subjects))
    return Event(
        at=pending.wall_first,
        until=pending.wall_last,
        severity=pending.severity,
        category=pending.category,
        subject=where or "site",
        message=message if where is None else f"{message} on {where}",
        members=subjects,
    )


def _common_node(paths: list[tuple[str, ...]]) -> str | None:
    """The deepest node on every path (paths run nearest first, up to the grid)."""
    if not paths or any(not p for p in paths):
        return None
    shared = set(paths[0]).intersection(*paths[1:])
    return next((node for node in paths[0] if node in shared), None)
