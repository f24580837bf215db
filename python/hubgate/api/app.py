"""The ASGI app: REST API under /api/v1, live updates, /metrics and the dashboard."""

from __future__ import annotations

import mimetypes
from pathlib import Path
from urllib.parse import quote

import trio

from hubgate.api import (
    live,
    routes_authorization,
    routes_commands,
    routes_csms,
    routes_limits,
    routes_prices,
    routes_schedules,
    routes_state,
)
from hubgate.api.context import ApiContext
from hubgate.api.deps import authenticate, bearer_token
from hubgate.api.guard import RequestGuard
from hubgate.api.http11 import Message
from hubgate.api.metrics import CONTENT_TYPE
from hubgate.api.routing import (
    JSON,
    ApiError,
    Endpoint,
    Receive,
    Request,
    Response,
    Router,
    Send,
    Stream,
    send_body,
    send_json,
    send_stream,
)

STATIC = Path(__file__).parent / "static"
OPENAPI = Path(__file__).parent / "openapi"
API_PREFIX = "/api/v1"
READ_ERRORS = {401: "Missing or wrong Bearer token"}
"""What a read that needs the token may answer besides its own."""

metrics_router = Router("metrics")


@metrics_router.get(
    "/metrics", content={"text/plain": {}, CONTENT_TYPE: {}}, responses={}
)  # fmt: skip
async def metrics(ctx: ApiContext) -> Response:
    """Prometheus metrics in the text exposition format."""
    text = ctx.metrics.render(ctx.hub.latest, ctx.sessions())
    return Response(text.encode(), CONTENT_TYPE)


ROUTERS = (
    (API_PREFIX, routes_state.router),
    (API_PREFIX, routes_limits.router),
    (API_PREFIX, routes_csms.router),
    (API_PREFIX, routes_authorization.router),
    (API_PREFIX, routes_schedules.router),
    (API_PREFIX, routes_prices.router),
    (API_PREFIX, live.router),
    (API_PREFIX, routes_limits.writes),
    (API_PREFIX, routes_csms.writes),
    (API_PREFIX, routes_authorization.writes),
    (API_PREFIX, routes_schedules.writes),
    (API_PREFIX, routes_prices.writes),
    (API_PREFIX, routes_commands.router),
    ("", metrics_router),
)
"""Every route, in the order the OpenAPI document lists them."""


def openapi_file(open_reads: bool) -> Path:
    """The app's OpenAPI document as served: generated from `ROUTERS` into the package
    (`python -m hubgate.api.openapi_doc`; tests/api/test_openapi_file.py checks it matches),
    so that the gateway never builds it (3.4 to 5.8 MiB held for the process's life once
    built, docs/performance.md)."""
    return OPENAPI / ("open-reads.json" if open_reads else "token-reads.json")


def endpoints() -> list[Endpoint]:
    """Every route of `ROUTERS`, ready to answer."""
    return [Endpoint(route, prefix) for prefix, router in ROUTERS for route in router.routes]


class App:
    """The API for `ctx` as an ASGI app (without `RequestGuard`'s checks: `build_app`)."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx
        self.open_reads = ctx.site.api.open_reads
        self.endpoints = endpoints()
        self.files = {
            "/": STATIC / "index.html",
            "/openapi.json": openapi_file(self.open_reads),
            **{f"/static/{path.name}": path for path in STATIC.iterdir()},
        }

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        method, path = str(scope["method"]), str(scope["path"])
        try:
            if path in self.files:
                await self._file(method, self.files[path], send)
                return
            matched = [(e, m) for e in self.endpoints if (m := e.pattern.match(path))]
            if not matched and path.endswith("/") and self._served(path.rstrip("/")):
                await _redirect(send, path.rstrip("/"), bytes(scope["query_string"]))
                return
            if not matched:
                raise ApiError(404, "Not Found")
            for endpoint, match in matched:
                if endpoint.route.method == method:
                    await self._answer(endpoint, match.groupdict(), Request(scope), receive, send)
                    return
            allowed = ", ".join(sorted({e.route.method for e, _ in matched}))
            raise ApiError(405, "Method Not Allowed", {"Allow": allowed})
        except ApiError as error:
            await send_json(send, error.status, {"detail": error.detail}, error.headers)

    def _served(self, path: str) -> bool:
        """Whether some route or file answers `path` (with some method)."""
        return path in self.files or any(e.pattern.match(path) for e in self.endpoints)

    async def _answer(
        self,
        endpoint: Endpoint,
        path: dict[str, str],
        request: Request,
        receive: Receive,
        send: Send,
    ) -> None:
        if endpoint.route.token or not self.open_reads:
            source = request.client_host or "?"
            authenticate(self.ctx, bearer_token(request.headers.get("authorization")), source)
        body = await _body(receive) if endpoint.body is not None else b""
        result = await endpoint.answer(self.ctx, request, path, body)
        if isinstance(result, Response):
            await send_body(send, result.status, result.body, result.media_type, result.headers)
        elif isinstance(result, Stream):
            await send_stream(send, result)
        else:
            await send_body(send, 200, endpoint.encode(result), JSON)

    async def _file(self, method: str, path: Path, send: Send) -> None:
        if method not in ("GET", "HEAD"):
            raise ApiError(405, "Method Not Allowed", {"Allow": "GET, HEAD"})
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if media_type.startswith("text/"):
            media_type += "; charset=utf-8"
        await send_body(send, 200, await trio.Path(path).read_bytes(), media_type)


async def _redirect(send: Send, path: str, query: bytes) -> None:
    """307 to `path` (one this app serves), `query` kept: a path given with a trailing slash
    (as Starlette's `redirect_slashes`)."""
    location = quote(path).encode("ascii") + (b"?" + query if query else b"")
    headers = [(b"location", location), (b"content-length", b"0")]
    await send({"type": "http.response.start", "status": 307, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if message["type"] != "http.request" or not message.get("more_body", False):
            return b"".join(chunks)


def build_app(ctx: ApiContext) -> RequestGuard:
    """The app serving `ctx` behind `RequestGuard`; reads need the token unless the site
    opens them."""
    return RequestGuard(App(ctx), ctx)
