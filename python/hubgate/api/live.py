"""Live updates: every new snapshot as a server-sent event.

Server-sent events rather than WebSocket: updates flow one way, the stream is
plain HTTP (proxies, curl and the browser's EventSource read it), and a reader
that falls behind simply gets the newest snapshot next, as the `StateHub`
promises. The dashboard reads the stream with `fetch`, so the Bearer header
works when reads are protected.
"""

from __future__ import annotations

import trio
from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from hubgate.api.deps import Ctx
from hubgate.state import StateHub

router = APIRouter(tags=["live"])

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
        SnapshotEvents(ctx.hub),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
