"""Serve the API over HTTP/1.1 (`hubgate.api.http11`), in the gateway's own Trio process.

Connections are accepted by `hubgate.listeners` (a cap of `[api] max_connections`,
the quietest connection closed for one more, backoff when out of descriptors) and
each is served by `serve_asgi`; with `tls_cert` the API speaks HTTPS, and with
`tls_client_ca` it asks every client for a certificate signed by that CA. An idle
connection is closed after `KEEP_ALIVE_S`.
"""

from __future__ import annotations

import ssl
from functools import partial
from typing import Any

import trio

from hubgate.api.app import build_app
from hubgate.api.context import ApiContext
from hubgate.api.http11 import AsgiApp, serve_asgi
from hubgate.config.services import Api
from hubgate.listeners import ConnectionGuard, GuardedStream, serve_guarded

KEEP_ALIVE_S = 5.0
"""A connection with no request in flight is closed after this long."""


def tls_context(api: Api) -> ssl.SSLContext | None:
    """The server's TLS for `[api]` (TLS 1.2 or newer, HTTP/1.1 by ALPN, a client
    certificate required with `tls_client_ca`); None without `tls_cert`."""
    if api.tls_cert is None or api.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers("ECDHE+AESGCM")
    context.set_alpn_protocols(["http/1.1"])
    context.load_cert_chain(api.tls_cert, api.tls_key)
    if api.tls_client_ca is not None:
        context.load_verify_locations(api.tls_client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


async def _serve_http(app: AsgiApp, tls: ssl.SSLContext | None, stream: GuardedStream) -> None:
    transport: trio.abc.Stream = stream
    if tls is not None:
        transport = trio.SSLStream(stream, tls, server_side=True, https_compatible=True)
    scope: dict[str, Any] = {"scheme": "http" if tls is None else "https"}
    try:
        scope["client"] = stream.socket.getpeername()[:2]
        scope["server"] = stream.socket.getsockname()[:2]
    except OSError:
        return  # the client is gone already
    await serve_asgi(app, transport, scope, keep_alive_s=KEEP_ALIVE_S)


async def serve_api(
    ctx: ApiContext, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve until cancelled; `await nursery.start(serve_api, ctx)` returns the bound port."""
    api = ctx.site.api
    serve = partial(_serve_http, build_app(ctx), tls_context(api))
    guard = ConnectionGuard("api", api.max_connections)
    listeners = await trio.open_tcp_listeners(api.port, host=api.host)
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_guarded, serve, listeners, guard)
        task_status.started(listeners[0].socket.getsockname()[1])
