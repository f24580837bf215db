"""The ASGI app: REST API under /api/v1, live updates, /metrics and the dashboard."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import trio
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles

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
from hubgate.api.deps import Ctx, require_token
from hubgate.api.guard import RequestGuard
from hubgate.api.metrics import CONTENT_TYPE

STATIC = Path(__file__).parent / "static"
OPENAPI = Path(__file__).parent / "openapi"
API_PREFIX = "/api/v1"


def openapi_file(open_reads: bool) -> Path:
    """The app's OpenAPI document as served: generated from `routes_app(open_reads)` into
    the package (`python -m hubgate.api.openapi_doc`; tests/api/test_openapi_file.py checks
    it matches), so that the gateway never builds it (3.4 to 5.8 MiB held for the process's
    life once built, docs/performance.md)."""
    return OPENAPI / ("open-reads.json" if open_reads else "token-reads.json")


def _metrics_router() -> APIRouter:
    router = APIRouter(tags=["metrics"])

    @router.get(
        "/metrics",
        response_class=PlainTextResponse,
        responses={200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}}}},
    )
    async def metrics(ctx: Ctx) -> PlainTextResponse:
        """Prometheus metrics in the text exposition format."""
        return PlainTextResponse(
            ctx.metrics.render(ctx.hub.latest, ctx.sessions()), media_type=CONTENT_TYPE
        )

    return router


def _json_safe(value: object) -> object:
    """`value` with every non-finite float as its text (JSON has no NaN or Infinity)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """422 listing what is wrong; a NaN or Infinity that was sent is echoed as text."""
    assert isinstance(exc, RequestValidationError)
    errors = _json_safe(jsonable_encoder(exc.errors()))
    return JSONResponse(status_code=422, content={"detail": errors})


def routes_app(open_reads: bool) -> FastAPI:
    """The app's routes and their documentation; reads need the token unless `open_reads`.
    `/openapi.json` serves `openapi_file(open_reads)`."""
    app = FastAPI(
        title="hubgate",
        summary="Operator API of a hubgate EV-charging gateway",
        version="1",
        openapi_url=None,  # served from the generated file below
        docs_url=None,  # the Swagger page loads its assets from a CDN
        redoc_url=None,
    )
    reads = [] if open_reads else [Depends(require_token)]
    read_errors: dict[int | str, dict[str, Any]] = (
        {} if open_reads else {401: {"description": "Missing or wrong Bearer token"}}
    )
    routers = (
        routes_state.router,
        routes_limits.router,
        routes_csms.router,
        routes_authorization.router,
        routes_schedules.router,
        routes_prices.router,
        live.router,
    )
    for router in routers:
        app.include_router(router, prefix=API_PREFIX, dependencies=reads, responses=read_errors)
    app.include_router(routes_limits.writes, prefix=API_PREFIX)
    app.include_router(routes_csms.writes, prefix=API_PREFIX)
    app.include_router(routes_authorization.writes, prefix=API_PREFIX)
    app.include_router(routes_schedules.writes, prefix=API_PREFIX)
    app.include_router(routes_prices.writes, prefix=API_PREFIX)
    app.include_router(routes_commands.router, prefix=API_PREFIX)
    app.include_router(_metrics_router(), dependencies=reads, responses=read_errors)
    document = trio.Path(openapi_file(open_reads))

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi() -> Response:
        return Response(await document.read_bytes(), media_type="application/json")

    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def build_app(ctx: ApiContext) -> FastAPI:
    """The app serving `ctx`; reads need the token unless the site opens them."""
    app = routes_app(ctx.site.api.open_reads)
    app.state.hubgate = ctx
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_middleware(RequestGuard, ctx=ctx)
    return app
