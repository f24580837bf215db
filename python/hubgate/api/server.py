"""Serve the API with Hypercorn's HTTP protocol, in the gateway's own Trio process.

Connections are accepted by `hubgate.listeners` (a cap of `[api] max_connections`,
the quietest connection closed for one more, backoff when out of descriptors) and
each is handed to Hypercorn's connection handler; with `tls_cert` the API speaks
HTTPS, and with `tls_client_ca` it asks every client for a certificate signed by
that CA. An idle connection is closed after Hypercorn's keep-alive timeout.
"""

from __future__ import annotations

import logging
import ssl
from functools import partial
from typing import Any, cast

import trio
from hypercorn.config import Config
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import AppWrapper, ASGIFramework, ConnectionState
from hypercorn.utils import wrap_app

from hubgate.api.app import build_app
from hubgate.api.context import ApiContext
from hubgate.config.services import Api
from hubgate.listeners import ConnectionGuard, GuardedStream, serve_guarded

log = logging.getLogger(__name__)

KEEP_ALIVE_S = 5.0
"""A connection with no request in flight is closed after this long."""


def hypercorn_config(api: Api) -> Config:
    """Hypercorn's settings for `[api]`: no access log, errors to our logger, TLS files."""
    config = Config()
    config.accesslog = None
    config.errorlog = log
    config.keep_alive_timeout = KEEP_ALIVE_S
    config.h11_max_incomplete_size = 16 * 1024
    if api.tls_cert is not None:
        config.certfile = api.tls_cert
        config.keyfile = api.tls_key
        config.alpn_protocols = ["http/1.1"]
        if api.tls_client_ca is not None:
            config.ca_certs = api.tls_client_ca
            config.verify_mode = ssl.CERT_REQUIRED
    return config


async def _serve_http(
    app: AppWrapper,
    config: Config,
    context: WorkerContext,
    tls: ssl.SSLContext | None,
    stream: GuardedStream,
) -> None:
    transport: Any = stream
    if tls is not None:
        transport = trio.SSLStream(stream, tls, server_side=True, https_compatible=True)
    await TCPServer(app, config, context, ConnectionState({}), transport)


async def serve_api(
    ctx: ApiContext, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve until cancelled; `await nursery.start(serve_api, ctx)` returns the bound port."""
    api = ctx.site.api
    config = hypercorn_config(api)
    tls = config.create_ssl_context() if config.ssl_enabled else None
    app = wrap_app(cast(ASGIFramework, build_app(ctx)), config.wsgi_max_body_size, None)
    serve = partial(_serve_http, app, config, WorkerContext(None), tls)
    guard = ConnectionGuard("api", api.max_connections)
    listeners = await trio.open_tcp_listeners(api.port, host=api.host)
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_guarded, serve, listeners, guard)
        task_status.started(listeners[0].socket.getsockname()[1])
