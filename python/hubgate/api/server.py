"""Serve the API with Hypercorn's Trio worker, in the gateway's own Trio process."""

from __future__ import annotations

import logging
from functools import partial
from typing import cast

import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from hypercorn.typing import ASGIFramework

from hubgate.api.app import build_app
from hubgate.api.context import ApiContext

log = logging.getLogger(__name__)

GRACEFUL_S = 2.0
"""Open streams get this long to finish on shutdown."""


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


async def serve_api(
    ctx: ApiContext, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve until cancelled; `await nursery.start(serve_api, ctx)` returns the bound port."""
    config = Config()
    host = ctx.site.api.host
    config.bind = [
        f"[{host}]:{ctx.site.api.port}" if ":" in host else f"{host}:{ctx.site.api.port}"
    ]
    config.accesslog = None
    config.errorlog = log
    config.graceful_timeout = GRACEFUL_S
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(
            partial(serve, cast(ASGIFramework, build_app(ctx)), config)
        )
        task_status.started(_port(binds[0]))
