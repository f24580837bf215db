"""Time-based limits: per node, during weekday/time windows, on dates or in a named tariff period.

Sans-IO, times are wall-clock epoch seconds, windows are local time in the site's timezone.
`ScheduleBook` holds the schedules from the site file (`[[schedules]]`, `[[tariff_periods]]`)
and from the API. Its timeline (`ahead`) cuts the time into segments; in each, the
tightest limit of the schedules active on a target holds. Every cycle `apply` turns the
segment in force now into a lease in the `LimitBook` (source `schedule`, the schedule's name
as origin) that expires when the segment ends, and clears it when no schedule holds; the
deadline planner reads `limits_ahead` so that it plans over the schedule, not only the
limit of the moment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as time_of_day
from itertools import pairwise
from zoneinfo import ZoneInfo

from hubgate.config.model import GRID_NODE_ID, WEEKDAYS, LimitSchedule, SiteConfig, TimeWindow
from hubgate.control.limits import NO_LIMIT, SITE, Limit, LimitBook, LimitSource

SITE_ORIGIN = "site file"


@dataclass(frozen=True, slots=True)
class Window:
    """Local time from `start` to `end` (the next day when `end <= start`) on `days`
    (weekday numbers, Monday 0), or only on `dates` when any are given."""

    start: time_of_day
    end: time_of_day
    days: frozenset[int] = frozenset(range(7))
    dates: frozenset[date] = frozenset()

    @classmethod
    def of(cls, window: TimeWindow) -> Window:
        """From the site file's (or the API's) window."""
        return cls(window.start, window.end, frozenset(window.days), frozenset(window.dates))

    def on(self, day: date) -> bool:
        """Whether the window starts on `day`."""
        return day in self.dates if self.dates else day.weekday() in self.days

    def span(self, day: date, zone: ZoneInfo) -> tuple[float, float]:
        """Its start and end (epoch s) when it starts on `day`."""
        start = datetime.combine(day, self.start, zone)
        end_day = day if self.end > self.start else day + timedelta(days=1)
        return start.timestamp(), datetime.combine(end_day, self.end, zone).timestamp()


@dataclass(frozen=True, slots=True)
class Schedule:
    """A limit on `target` (a `LimitBook` target) during `windows`."""

    name: str
    target: str
    limit: Limit
    windows: tuple[Window, ...]
    origin: str = SITE_ORIGIN
    """Who set it: the site file, or the API's client."""
    tariff: str | None = None
    config: LimitSchedule | None = None
    """Its site-file (or API) form."""


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of time in which one limit holds on a target, from the schedules `names`."""

    target: str
    start: float
    end: float
    limit: Limit
    names: tuple[str, ...]


def target_of(node: str) -> str:
    """The `LimitBook` target of a node id (`grid`: the site)."""
    return SITE if node == GRID_NODE_ID else node


class ScheduleBook:
    """The schedules of a site, their timeline and their leases (see the module docstring)."""

    def __init__(
        self,
        schedules: Iterable[Schedule] = (),
        *,
        tariffs: Mapping[str, tuple[Window, ...]] | None = None,
        timezone: str = "UTC",
    ) -> None:
        self.zone = ZoneInfo(timezone)
        self.tariffs = dict(tariffs or {})
        self._schedules = {s.name: s for s in schedules}
        self._site_names = frozenset(self._schedules)
        self.listeners: list[Callable[[], None]] = []
        """Called after every change (`control.kept_inputs` saves the API's schedules)."""

    @classmethod
    def of_site(cls, site: SiteConfig) -> ScheduleBook:
        """The site file's schedules and tariff periods."""
        tariffs = {t.name: tuple(Window.of(w) for w in t.windows) for t in site.tariff_periods}
        book = cls(tariffs=tariffs, timezone=site.site.timezone)
        for config in site.schedules:
            book.put(book.schedule(config))
        book._site_names = frozenset(book._schedules)
        return book

    def schedule(self, config: LimitSchedule, origin: str = SITE_ORIGIN) -> Schedule:
        """A schedule from its site-file (or API) form; KeyError for an unknown tariff."""
        windows = (
            self.tariffs[config.tariff]
            if config.tariff is not None
            else tuple(Window.of(w) for w in config.windows)
        )
        limit = Limit(config.phase_current_limit_a, config.power_limit_kw)
        return Schedule(
            config.name, target_of(config.node), limit, windows, origin, config.tariff, config
        )

    def put(self, schedule: Schedule) -> None:
        """Add a schedule, or replace the one with its name."""
        self._schedules[schedule.name] = schedule
        self._changed()

    def remove(self, name: str) -> bool:
        """Drop a schedule; False when there is none of that name."""
        removed = self._schedules.pop(name, None) is not None
        self._changed()
        return removed

    def replace_api(self, schedules: Iterable[Schedule]) -> None:
        """Make `schedules` every schedule not from the site file, as one change."""
        site = {n: s for n, s in self._schedules.items() if self.from_site_file(n)}
        self._schedules = site | {s.name: s for s in schedules}
        self._changed()

    def _changed(self) -> None:
        for listener in self.listeners:
            listener()

    def api_configs(self) -> list[dict[str, object]]:
        """The schedules not from the site file, as JSON: their form and origin."""
        kept: list[dict[str, object]] = []
        for schedule in self.schedules():
            if self.from_site_file(schedule.name) or schedule.config is None:
                continue
            config = schedule.config.model_dump(mode="json")
            for window in config["windows"]:  # weekdays as the site file writes them
                window["days"] = [WEEKDAYS[d] for d in window["days"]]
            kept.append({"config": config, "origin": schedule.origin})
        return kept

    def from_site_file(self, name: str) -> bool:
        """Whether the schedule `name` was in the site file at start."""
        return name in self._site_names

    def schedules(self) -> list[Schedule]:
        """Every schedule, by name."""
        return [self._schedules[name] for name in sorted(self._schedules)]

    def targets(self) -> set[str]:
        """The targets some schedule limits."""
        return {s.target for s in self._schedules.values()}

    def _spans(self, schedule: Schedule, start: float, end: float) -> Iterable[tuple[float, float]]:
        first = datetime.fromtimestamp(start, self.zone).date() - timedelta(days=1)
        last = datetime.fromtimestamp(end, self.zone).date()
        day = first
        while day <= last:
            for window in schedule.windows:
                if window.on(day):
                    a, b = window.span(day, self.zone)
                    if a < end and b > start:
                        yield max(a, start), min(b, end)
            day += timedelta(days=1)

    def ahead(self, target: str, start: float, end: float) -> list[Segment]:
        """The segments between `start` and `end` (epoch s) in which a schedule holds on
        `target`, in time order: in each, the tightest of the schedules active then."""
        spans = [
            (a, b, s)
            for s in self._schedules.values()
            if s.target == target
            for a, b in self._spans(s, start, end)
        ]
        cuts = sorted({t for a, b, _ in spans for t in (a, b)})
        segments: list[Segment] = []
        for a, b in pairwise(cuts):
            active = [s for lo, hi, s in spans if lo <= a and hi >= b]
            if not active:
                continue
            limit = NO_LIMIT
            for s in active:
                limit = limit.tighten(s.limit)
            names = tuple(sorted({s.name for s in active}))
            last = segments[-1] if segments else None
            if last is not None and last.end == a and last.limit == limit and last.names == names:
                segments[-1] = Segment(target, last.start, b, limit, names)
            else:
                segments.append(Segment(target, a, b, limit, names))
        return segments

    def at(self, target: str, wall: float) -> Segment | None:
        """The segment holding on `target` at `wall`, None when no schedule does."""
        segments = self.ahead(target, wall, wall + 2 * 86_400.0)
        return segments[0] if segments and segments[0].start <= wall else None

    def apply(self, book: LimitBook, now: float, wall: float) -> None:
        """Make the limit book hold what the schedules hold now: a lease per target, until
        its segment ends (`now` is the book's clock, `wall` the same instant in epoch s)."""
        book.expire(now)
        for target in self.targets():
            segment = self.at(target, wall)
            held = book.lease(target, LimitSource.SCHEDULE)
            if segment is None:
                if held is not None:
                    book.clear(target, LimitSource.SCHEDULE, now=now, origin="schedule ended")
                continue
            origin = "schedule " + ", ".join(segment.names)
            if held is not None and held.limit == segment.limit and held.origin == origin:
                continue
            book.set(
                target,
                LimitSource.SCHEDULE,
                segment.limit,
                now=now,
                lease_s=segment.end - wall,
                origin=origin,
            )
        for lease in book.leases():
            if lease.source is LimitSource.SCHEDULE and lease.target not in self.targets():
                book.clear(lease.target, LimitSource.SCHEDULE, now=now, origin="schedule removed")

    def limits_ahead(
        self, target: str, starts: Sequence[float], ends: Sequence[float]
    ) -> list[Limit]:
        """Per slot (`starts[k]` to `ends[k]`, epoch s): the tightest limit any schedule holds
        on `target` at any time in it (`NO_LIMIT` where none does)."""
        if not starts:
            return []
        segments = self.ahead(target, starts[0], ends[-1])
        limits = []
        for a, b in zip(starts, ends, strict=True):
            limit = NO_LIMIT
            for segment in segments:
                if segment.start < b and segment.end > a:
                    limit = limit.tighten(segment.limit)
            limits.append(limit)
        return limits
