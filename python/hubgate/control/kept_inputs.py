"""The API's schedules and prices, kept in the records file so that a restart loses neither.

`keep_inputs` restores what the API set before (`RecordStore.kept`) into the planner's
`ScheduleBook` and `PriceSeries`, and saves them again whenever the API changes them
(`RecordStore.keep`). A kept schedule the site file no longer allows (its tariff period or
its node is gone, or the site file has a schedule of its name now) is not restored, and an
event says so; prices already past are dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from pydantic import ValidationError

from hubgate.config.model import GRID_NODE_ID, LimitSchedule
from hubgate.control.prices import PriceSeries
from hubgate.control.schedules import ScheduleBook
from hubgate.records.events import EventLog
from hubgate.records.store import RecordStore
from hubgate.state import EventLevel

SCHEDULES = "api-schedules"
PRICES = "api-prices"


def keep_inputs(
    store: RecordStore,
    schedules: ScheduleBook,
    prices: PriceSeries,
    *,
    nodes: Collection[str],
    wall_clock: Callable[[], float],
    events: EventLog,
) -> None:
    """Restore the API's schedules and prices from `store` and keep them there from now on."""
    for kept in _rows(store.kept(SCHEDULES)):
        try:
            config = LimitSchedule.model_validate(kept["config"])
            why = _refused(config, schedules, nodes)
            if why is None:
                schedules.put(schedules.schedule(config, str(kept["origin"])))
        except (KeyError, TypeError, ValidationError) as error:
            why = f"unreadable: {error}"
        if why is not None:
            name = kept.get("config", {}).get("name", "?") if isinstance(kept, dict) else "?"
            events.emit(EventLevel.WARNING, "schedules", f"API schedule {name} not restored: {why}")
    now = wall_clock()
    for row in _rows(store.kept(PRICES)):
        start, end, price = (float(x) for x in row)
        if end > now:
            prices.put(start, end - start, [price])
    schedules.listeners.append(lambda: store.keep(SCHEDULES, schedules.api_configs(), wall_clock()))
    prices.listeners.append(
        lambda: store.keep(PRICES, prices.points(since=wall_clock()), wall_clock())
    )


def _refused(config: LimitSchedule, book: ScheduleBook, nodes: Collection[str]) -> str | None:
    """Why the site file no longer allows a kept schedule (None: it does)."""
    if book.from_site_file(config.name):
        return "the site file has a schedule of its name now"
    if config.node != GRID_NODE_ID and config.node not in nodes:
        return f"the site file has no node {config.node!r} now"
    if config.tariff is not None and config.tariff not in book.tariffs:
        return f"the site file has no tariff period {config.tariff!r} now"
    return None


def _rows(value: object) -> list[Any]:
    return value if isinstance(value, list) else []
