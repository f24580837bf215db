"""Server-sent events: a reader gets the latest snapshot, then each newly published one."""

from __future__ import annotations

import json

import pytest
import trio
import trio.testing

from hubgate.api.live import SnapshotEvents
from hubgate.state import EventCategory, EventLevel, StateHub
from tests.support.api import RunningApi, read_events, snapshot


async def test_stream_delivers_newly_published_snapshots(api: RunningApi) -> None:
    api.ctx.hub.publish(snapshot(1))
    port = int(api.url.rsplit(":", 1)[1])
    with trio.fail_after(10):
        events = await read_events(
            port, "/api/v1/live", 3, lambda n: api.ctx.hub.publish(snapshot(n + 1))
        )
    assert [(e["id"], e["event"]) for e in events] == [
        ("1", "state"),
        ("2", "state"),
        ("3", "state"),
    ]
    assert [json.loads(e["data"])["cycle"] for e in events] == [1, 2, 3]


@pytest.mark.timeout(130)  # after its deadline, so that Trio ends it cleanly
async def test_idle_stream_sends_keepalive_comments(autojump_clock: trio.testing.MockClock) -> None:
    hub = StateHub()
    events = SnapshotEvents(hub, keepalive_s=15)
    with trio.fail_after(100):
        assert await anext(events) == ": keep-alive\n\n"
        hub.publish(snapshot(3))
        first = await anext(events)
    assert first.startswith("id: 1\nevent: state\ndata: {")
    assert json.loads(first.split("data: ", 1)[1])["cycle"] == 3


async def test_the_event_stream_sends_each_new_event_once(api: RunningApi) -> None:
    log = api.ctx.events
    log.emit(EventLevel.WARNING, "site", "before the reader came")  # not sent: from now
    port = int(api.url.rsplit(":", 1)[1])

    def next_event(n: int) -> None:
        log.emit(EventLevel.INFO, "site", f"info {n}")  # below the reader's severity
        log.emit(EventLevel.WARNING, f"cp-{n}#1", "unreachable", category=EventCategory.DEVICE)

    async def once_connected() -> None:
        await trio.testing.wait_all_tasks_blocked(cushion=0.05)
        next_event(0)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(once_connected)
            events = await read_events(port, "/api/v1/events/live?severity=warning", 3, next_event)
    assert [(e["id"], e["event"]) for e in events] == [
        ("3", "event"),
        ("5", "event"),
        ("7", "event"),
    ]
    assert [json.loads(e["data"])["subject"] for e in events] == ["cp-0#1", "cp-1#1", "cp-2#1"]
    with trio.fail_after(10):  # a reader resumes after the last id it saw
        resumed = await read_events(port, "/api/v1/events/live?after=4", 2, lambda n: None)
    assert [e["id"] for e in resumed] == ["5", "6"]
