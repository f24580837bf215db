"""Live updates: every new snapshot as a server-sent event.

Server-sent events rather than WebSocket: updates flow one way, the stream is
plain HTTP (proxies, curl and the browser's EventSource read it), and a reader
that falls behind simply gets the newest snapshot next, as the `StateHub`
promises. The dashboard reads the stream with `fetch`, so the Bearer header
works when reads are protected.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import trio
from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from hubgate.api.deps import Ctx
from hubgate.state import StateHub

router = APIRouter(tags=["live"])

KEEPALIVE_S = 15.0
"""A comment line this often keeps idle proxies from closing the stream."""


async def snapshot_events(hub: StateHub, keepalive_s: float = KEEPALIVE_S) -> AsyncIterator[str]:
    """The latest snapshot, then each newer one, as `state` events with the hub version as id."""
    seen = 0
    while True:
        with trio.move_on_after(keepalive_s) as waited:
            seen, state = await hub.wait_newer(seen)
        if waited.cancelled_caught:
            yield ": keep-alive\n\n"
            continue
        yield f"id: {seen}\nevent: state\ndata: {state.model_dump_json()}\n\n"


@router.get(
    "/live",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "A stream of `state` events, each a SiteState as JSON",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    },
)
async def live(ctx: Ctx) -> StreamingResponse:
    """Server-sent events: the latest snapshot now, then every new one."""
    return StreamingResponse(
        snapshot_events(ctx.hub),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
