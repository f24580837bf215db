"""Energy prices, an optional input: sessions with slack charge in the cheap slots first."""

from __future__ import annotations

from hubgate.api.context import ApiContext
from hubgate.api.models import PricesWrite, PriceView
from hubgate.api.routing import ApiError, Router
from hubgate.control.prices import PriceSeries

router = Router("prices")
writes = Router(
    "prices",
    token=True,
    responses={
        401: "Missing or wrong Bearer token",
        403: "Writes are disabled (no token configured)",
    },
)


def _series(ctx: ApiContext) -> PriceSeries:
    if ctx.prices is None:
        raise ApiError(404, "this gateway has no control loop")
    return ctx.prices


def _ahead(ctx: ApiContext) -> list[PriceView]:
    now = ctx.wall_clock()
    return [PriceView(start=a, end=b, price=p) for a, b, p in _series(ctx).points(since=now)]


@router.get("/prices")
async def list_prices(ctx: ApiContext) -> list[PriceView]:
    """The prices known from now on, in time order."""
    return _ahead(ctx)


@writes.put("/prices")
async def put_prices(ctx: ApiContext, body: PricesWrite) -> list[PriceView]:
    """Prices for consecutive intervals from `start` (they replace what was known for that
    time); the deadline planner lets sessions with slack wait for the cheap slots. Kept in
    the records file across restarts (`control.kept_inputs`)."""
    _series(ctx).put(body.start.timestamp(), body.interval_min * 60.0, body.prices)
    return _ahead(ctx)


@writes.delete("/prices")
async def clear_prices(ctx: ApiContext) -> list[PriceView]:
    """Forget every price (sessions charge as soon as they can again)."""
    _series(ctx).clear()
    return _ahead(ctx)
