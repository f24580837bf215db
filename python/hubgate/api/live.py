"""Live updates: every new snapshot as a server-sent event.

Server-sent events rather than WebSocket: updates flow one way, the stream is
plain HTTP (proxies, curl and the browser's EventSource read it), and a reader
that falls behind simply gets the newest snapshot next, as the `StateHub`
promises. The dashboard reads the stream with `fetch`, so the Bearer header
works when reads are protected.
"""

from __future__ import annotations

from collections import deque
from typing import Annotated

import trio
from pydantic import Field

from hubgate.api.context import ApiContext
from hubgate.api.routing import HEADER, Router, Stream
from hubgate.records.events import EventLog
from hubgate.records.store import EventQuery
from hubgate.state import Event, EventCategory, EventLevel, StateHub

router = Router("live")

KEEPALIVE_S = 15.0
"""A comment line this often keeps idle proxies from closing the stream."""


class SnapshotEvents:
    """The latest snapshot, then each newer one, as `state` events with the hub version as id.

    An iterator object rather than an async generator: the server may drop it
    mid-wait on disconnect or shutdown, and there is nothing to finalise.
    """

    def __init__(self, hub: StateHub, keepalive_s: float = KEEPALIVE_S) -> None:
        self._hub = hub
        self._keepalive_s = keepalive_s
        self._seen = 0

    def __aiter__(self) -> SnapshotEvents:
        return self

    async def __anext__(self) -> str:
        with trio.move_on_after(self._keepalive_s):
            self._seen, state = await self._hub.wait_newer(self._seen)
            return f"id: {self._seen}\nevent: state\ndata: {state.model_dump_json()}\n\n"
        return ": keep-alive\n\n"


EVENT_STREAM = {"text/event-stream": {"schema": {"type": "string"}}}
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@router.get(
    "/live",
    content=EVENT_STREAM,
    description_200="A stream of `state` events, each a SiteState as JSON",
)
async def live(ctx: ApiContext) -> Stream:
    """Server-sent events: the latest snapshot now, then every new one."""
    return Stream(SnapshotEvents(ctx.hub), "text/event-stream", STREAM_HEADERS)


class LoggedEvents:
    """Each event stored after `after_id` that matches, as an `event` with its id."""

    def __init__(self, log: EventLog, query: EventQuery, keepalive_s: float = KEEPALIVE_S) -> None:
        self._log = log
        self._query = query
        self._seen = query.after_id
        self._keepalive_s = keepalive_s
        self._ready: deque[Event] = deque()

    def __aiter__(self) -> LoggedEvents:
        return self

    async def __anext__(self) -> str:
        if not self._ready:
            with trio.move_on_after(self._keepalive_s):
                newest = self._seen
                while not self._ready:
                    newest = await self._log.wait_newer(newest)
                    query = EventQuery(
                        severity=self._query.severity,
                        category=self._query.category,
                        after_id=self._seen,
                        limit=10_000,
                    )
                    self._ready.extend(self._log.query(query))
                    self._seen = newest
        if not self._ready:
            return ": keep-alive\n\n"
        event = self._ready.popleft()
        return f"id: {event.id}\nevent: event\ndata: {event.model_dump_json()}\n\n"


@router.get(
    "/events/live",
    content=EVENT_STREAM,
    description_200="A stream of `event` events, each an Event as JSON",
)
async def live_events(
    ctx: ApiContext,
    severity: Annotated[
        EventLevel, Field(description="The least severity: warning gives warnings and alarms")
    ] = EventLevel.INFO,
    category: EventCategory | None = None,
    after: Annotated[
        int | None, Field(ge=0, le=2**53, description="Start after this event id (default: now)")
    ] = None,
    last_event_id: Annotated[int | None, Field(ge=0, le=2**53), HEADER] = None,
) -> Stream:
    """Server-sent events: every event logged from now (or after `after`, or the
    `Last-Event-ID` a reconnecting reader sends) that matches."""
    start = after if after is not None else last_event_id
    if start is None:
        newest = ctx.events.query(EventQuery(limit=1))
        start = newest[-1].id if newest else 0
    query = EventQuery(severity=severity, category=category, after_id=start)
    return Stream(LoggedEvents(ctx.events, query), "text/event-stream", STREAM_HEADERS)
