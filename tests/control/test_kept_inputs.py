"""The API's schedules and prices survive a restart: kept in the records file and restored
into a new gateway's planner, unless the site file no longer allows them."""

from __future__ import annotations

from datetime import time
from pathlib import Path

from hubgate.config.model import LimitSchedule, TimeWindow
from hubgate.control.kept_inputs import keep_inputs
from hubgate.control.prices import PriceSeries
from hubgate.control.schedules import ScheduleBook, Window
from hubgate.records.store import RecordStore
from hubgate.state import EventLevel
from tests.support.events import RecordedEvents

NOW = 1_780_000_000.0
NIGHT = TimeWindow(start=time(22, 0), end=time(6, 0))


def kept(path: Path, book: ScheduleBook, prices: PriceSeries) -> RecordedEvents:
    """A gateway's start over the records file at `path`."""
    events = RecordedEvents()
    keep_inputs(
        RecordStore(path),
        book,
        prices,
        nodes={"board"},
        wall_clock=lambda: NOW,
        events=events,
    )
    return events


def peak_tariff() -> dict[str, tuple[Window, ...]]:
    return {"peak": (Window.of(TimeWindow(start=time(17, 0), end=time(20, 0))),)}


def test_api_schedules_and_prices_are_there_again_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite3"
    book, prices = ScheduleBook(tariffs=peak_tariff()), PriceSeries()
    kept(path, book, prices)
    night = LimitSchedule(name="night", node="board", power_limit_kw=40, windows=(NIGHT,))
    peak = LimitSchedule(name="peak-cap", power_limit_kw=300, tariff="peak")
    book.put(book.schedule(night, "api 10.0.0.7"))
    book.put(book.schedule(peak, "api 10.0.0.7"))
    prices.put(NOW - 3600, 900.0, [0.30] * 4 + [0.12] * 8)  # an hour past, two ahead
    book.remove("peak-cap")

    again, prices_again = ScheduleBook(tariffs=peak_tariff()), PriceSeries()
    events = kept(path, again, prices_again)
    assert [s.name for s in again.schedules()] == ["night"]
    (restored,) = again.schedules()
    assert (restored.target, restored.limit.power_kw, restored.windows) == (
        "board",
        40,
        (Window.of(NIGHT),),
    )
    assert restored.origin == "api 10.0.0.7"
    assert prices_again.points() == prices.points(since=NOW)
    assert prices_again.at(NOW + 60) == 0.12
    assert events.emitted == []


def test_a_kept_schedule_the_site_file_no_longer_allows_is_not_restored(tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite3"
    book = ScheduleBook(tariffs=peak_tariff())
    kept(path, book, PriceSeries())
    for config in (
        LimitSchedule(name="peak-cap", power_limit_kw=300, tariff="peak"),
        LimitSchedule(name="feeder", node="board", power_limit_kw=50, windows=(NIGHT,)),
        LimitSchedule(name="night", power_limit_kw=90, windows=(NIGHT,)),
    ):
        book.put(book.schedule(config, "api"))
    # The site file changed: no tariff period "peak" now, and a schedule "night" of its own.
    site_night = LimitSchedule(name="night", power_limit_kw=100, windows=(NIGHT,))
    again = ScheduleBook([ScheduleBook().schedule(site_night)])
    events = kept(path, again, PriceSeries())
    assert {s.name: s.limit.power_kw for s in again.schedules()} == {"feeder": 50, "night": 100}
    assert events.emitted == [
        (
            EventLevel.WARNING,
            "schedules",
            "API schedule night not restored: the site file has a schedule of its name now",
        ),
        (
            EventLevel.WARNING,
            "schedules",
            "API schedule peak-cap not restored: the site file has no tariff period 'peak' now",
        ),
    ]
