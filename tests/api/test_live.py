"""Server-sent events: a reader gets the latest snapshot, then each newly published one."""

from __future__ import annotations

import json

import trio
import trio.testing

from hubgate.api.live import SnapshotEvents
from hubgate.state import StateHub
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


async def test_idle_stream_sends_keepalive_comments(autojump_clock: trio.testing.MockClock) -> None:
    hub = StateHub()
    events = SnapshotEvents(hub, keepalive_s=15)
    with trio.fail_after(100):
        assert await anext(events) == ": keep-alive\n\n"
        hub.publish(snapshot(3))
        first = await anext(events)
    assert first.startswith("id: 1\nevent: state\ndata: {")
    assert json.loads(first.split("data: ", 1)[1])["cycle"] == 3
