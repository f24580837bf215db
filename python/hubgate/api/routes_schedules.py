"""Time-based limits: the schedules, the next 24 hours of what they hold, API schedules."""

from __future__ import annotations

from pydantic import ValidationError

from hubgate.api.context import ApiContext
from hubgate.api.models import (
    LimitValue,
    SchedulesView,
    ScheduleView,
    ScheduleWrite,
    SegmentView,
    WindowView,
)
from hubgate.api.routing import ApiError, Request, Router, invalid
from hubgate.config.model import WEEKDAYS
from hubgate.control.schedules import Schedule, ScheduleBook

AHEAD_S = 86_400.0

router = Router("schedules")
writes = Router(
    "schedules",
    token=True,
    responses={
        401: "Missing or wrong Bearer token",
        403: "Writes are disabled (no token configured)",
        404: "No such schedule or node",
        409: "The schedule is the site file's (change it there)",
    },
)


def _book(ctx: ApiContext) -> ScheduleBook:
    if ctx.schedules is None:
        raise ApiError(404, "this gateway has no control loop")
    return ctx.schedules


def _view(book: ScheduleBook, schedule: Schedule) -> ScheduleView:
    return ScheduleView(
        name=schedule.name,
        target=schedule.target,
        limit=LimitValue.of(schedule.limit),
        tariff=schedule.tariff,
        windows=tuple(
            WindowView(
                days=tuple(WEEKDAYS[d] for d in sorted(w.days)),
                dates=tuple(sorted(w.dates)),
                start=w.start,
                end=w.end,
            )
            for w in schedule.windows
        ),
        origin=schedule.origin,
        site_file=book.from_site_file(schedule.name),
    )


@router.get("/schedules")
async def list_schedules(ctx: ApiContext) -> SchedulesView:
    """Every schedule, and per target the next 24 hours of scheduled limits (the tightest
    of the schedules active in each stretch)."""
    book = _book(ctx)
    now = ctx.wall_clock()
    return SchedulesView(
        schedules=tuple(_view(book, s) for s in book.schedules()),
        ahead=tuple(
            SegmentView(
                target=segment.target,
                start=segment.start,
                end=segment.end,
                limit=LimitValue.of(segment.limit),
                schedules=segment.names,
            )
            for target in sorted(book.targets())
            for segment in book.ahead(target, now, now + AHEAD_S)
        ),
    )


@writes.put("/schedules/{name}")
async def put_schedule(
    ctx: ApiContext, request: Request, name: str, body: ScheduleWrite
) -> ScheduleView:
    """Add or replace an API schedule: a limit on a node during windows or a tariff period;
    it becomes a lease (source `schedule`) while it holds. Kept in the records file across
    restarts (`control.kept_inputs`)."""
    book = _book(ctx)
    if book.from_site_file(name):
        raise ApiError(409, f"schedule {name!r} is the site file's: change it there")
    if body.node != "grid" and body.node not in ctx.node_ids:
        raise ApiError(404, f"no node {body.node!r}")
    try:
        config = body.config(name)
    except ValidationError as error:
        raise invalid(
            [
                {"loc": ("body", *e["loc"]), "msg": e["msg"], "type": e["type"]}
                for e in error.errors()
            ]
        ) from None
    if config.tariff is not None and config.tariff not in book.tariffs:
        known = ", ".join(sorted(book.tariffs)) or "none in the site file"
        raise invalid(
            [
                {
                    "loc": ("body", "tariff"),
                    "msg": f"tariff {config.tariff!r} is not a [[tariff_periods]] name ({known})",
                    "type": "value_error",
                }
            ]
        )
    schedule = book.schedule(config, f"api {request.client_host}" if request.client_host else "api")
    book.put(schedule)
    return _view(book, schedule)


@writes.delete("/schedules/{name}")
async def delete_schedule(ctx: ApiContext, name: str) -> ScheduleView:
    """Drop an API schedule (its lease is cleared in the next cycle)."""
    book = _book(ctx)
    if book.from_site_file(name):
        raise ApiError(409, f"schedule {name!r} is the site file's: change it there")
    schedule = next((s for s in book.schedules() if s.name == name), None)
    if schedule is None:
        raise ApiError(404, f"no schedule {name!r}")
    book.remove(name)
    return _view(book, schedule)
