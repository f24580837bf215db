"""Time-based limits: windows, dates and tariff periods as a timeline, leases in the limit
book with their source, and the deadline planner planning over the schedule ahead."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from hubgate.config import ConfigError, load_site
from hubgate.control.deadlines import NeedSource
from hubgate.control.limits import SITE, Limit, LimitBook, LimitSource
from hubgate.control.schedules import Schedule, ScheduleBook, Window
from tests.support.loop_site import PlannedSite, SimSite

BERLIN = ZoneInfo("Europe/Berlin")
V = 230.0


def at(year: int, month: int, day: int, hour: int, minute: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN).timestamp()


def schedule(name: str, kw: float, *windows: Window, target: str = SITE) -> Schedule:
    return Schedule(name, target, Limit(power_kw=kw), windows)


def test_a_window_over_midnight_runs_into_the_next_day_on_its_weekdays_only() -> None:
    night = Window(time(22), time(6), days=frozenset({0}))  # Monday nights
    book = ScheduleBook([schedule("night", 50, night)], timezone="Europe/Berlin")
    # Sunday 2026-03-01 to Wednesday 2026-03-04: only Monday 22:00 - Tuesday 06:00.
    segments = book.ahead(SITE, at(2026, 3, 1, 0), at(2026, 3, 4, 0))
    assert [(s.start, s.end) for s in segments] == [(at(2026, 3, 2, 22), at(2026, 3, 3, 6))]
    now = book.at(SITE, at(2026, 3, 3, 5, 59))
    assert now is not None
    assert (now.start, now.end, now.names) == (at(2026, 3, 3, 5, 59), at(2026, 3, 3, 6), ("night",))
    assert book.at(SITE, at(2026, 3, 3, 6)) is None
    assert book.at(SITE, at(2026, 3, 2, 21, 59)) is None


def test_dates_pick_days_whatever_the_weekday_and_the_clock_change_is_local_time() -> None:
    # 2026-03-29 is a Sunday and the clocks go forward at 02:00 in Berlin: 00:00-06:00 is 5 h.
    whole_day = Window(time(0), time(6), dates=frozenset({date(2026, 3, 29)}))
    book = ScheduleBook([schedule("holiday", 10, whole_day)], timezone="Europe/Berlin")
    (segment,) = book.ahead(SITE, at(2026, 3, 27, 0), at(2026, 4, 2, 0))
    assert segment.end - segment.start == 5 * 3600
    assert datetime.fromtimestamp(segment.end, UTC) == datetime(2026, 3, 29, 4, 0, tzinfo=UTC)


def test_overlapping_schedules_cut_the_timeline_and_the_tightest_holds() -> None:
    evening = Window(time(17), time(21))
    peak = Window(time(18), time(20))
    book = ScheduleBook(
        [schedule("evening", 200, evening), schedule("peak", 120, peak)],
        timezone="Europe/Berlin",
    )
    segments = book.ahead(SITE, at(2026, 3, 2, 12), at(2026, 3, 2, 23))
    assert [(s.start, s.end, s.limit.power_kw, s.names) for s in segments] == [
        (at(2026, 3, 2, 17), at(2026, 3, 2, 18), 200, ("evening",)),
        (at(2026, 3, 2, 18), at(2026, 3, 2, 20), 120, ("evening", "peak")),
        (at(2026, 3, 2, 20), at(2026, 3, 2, 21), 200, ("evening",)),
    ]
    # A slot that touches the peak for a minute gets the peak's limit (the tightest in it).
    starts = [at(2026, 3, 2, 16, 45), at(2026, 3, 2, 17, 45), at(2026, 3, 2, 20, 0)]
    ends = [at(2026, 3, 2, 17, 0), at(2026, 3, 2, 18, 1), at(2026, 3, 2, 20, 15)]
    assert [limit.power_kw for limit in book.limits_ahead(SITE, starts, ends)] == [None, 120, 200]
    assert book.ahead("board", at(2026, 3, 2, 12), at(2026, 3, 2, 23)) == []


def test_the_schedule_in_force_is_a_lease_with_its_source_that_lapses_when_it_ends() -> None:
    book = LimitBook()
    peak = ScheduleBook([schedule("peak", 120, Window(time(18), time(20)))])
    offset = datetime(2026, 3, 2, 0, 0, tzinfo=UTC).timestamp()  # loop time 0 is midnight UTC

    def apply(hour: float) -> None:
        peak.apply(book, hour * 3600, offset + hour * 3600)

    apply(17.5)
    assert book.lease(SITE, LimitSource.SCHEDULE) is None
    apply(18.0)
    lease = book.lease(SITE, LimitSource.SCHEDULE)
    assert lease is not None
    assert (lease.limit, lease.origin, lease.expires_at) == (
        Limit(power_kw=120),
        "schedule peak",
        20 * 3600,
    )
    assert book.in_force(SITE, 19 * 3600).sources == (LimitSource.SCHEDULE,)
    apply(19.0)  # unchanged: no new audit entry
    assert [e.action.value for e in book.audit()] == ["set"]
    apply(20.0)
    assert book.lease(SITE, LimitSource.SCHEDULE) is None
    assert [e.action.value for e in book.audit()] == ["set", "expired"]
    apply(18.5 + 24)  # the next day's peak
    assert peak.remove("peak")
    apply(19.0 + 24)
    assert book.lease(SITE, LimitSource.SCHEDULE) is None
    assert [e.action.value for e in book.audit()][-1] == "cleared"


SCHEDULES = """
[[tariff_periods]]
name = "high"
windows = [{ days = ["mon-fri"], start = "17:00", end = "20:00" }]

[[schedules]]
name = "evening"
node = "grid"
power_limit_kw = 150
tariff = "high"

[[schedules]]
name = "board-night"
node = "board"
phase_current_limit_a = [40, 40, 40]
windows = [{ days = ["sat-sun"], start = "22:00", end = "06:00" }, { dates = [2026-12-24], start = "00:00", end = "00:00" }]
"""

SITE_FILE = """
[site]
name = "depot"
timezone = "Europe/Berlin"
[grid]
phase_current_limit_a = 400
[[nodes]]
id = "board"
kind = "switchboard"
phase_current_limit_a = 200
"""


def test_the_api_schedules_are_replaced_at_once_and_the_site_files_stay() -> None:
    evening = Window(time(17), time(21))
    book = ScheduleBook([schedule("site", 200, evening)])  # the site file's
    book.put(schedule("old", 100, evening))
    changes: list[None] = []
    book.listeners.append(lambda: changes.append(None))
    book.replace_api([schedule("new", 50, evening), schedule("newer", 60, evening)])
    assert [s.name for s in book.schedules()] == ["new", "newer", "site"]
    assert len(changes) == 1


def test_the_site_file_names_windows_dates_and_tariff_periods(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(SITE_FILE + SCHEDULES)
    book = ScheduleBook.of_site(load_site(path))
    evening, night = book.schedules()[1], book.schedules()[0]
    assert (evening.target, evening.limit, evening.tariff) == (SITE, Limit(power_kw=150), "high")
    assert evening.windows == (Window(time(17), time(20), frozenset(range(5))),)
    assert night.target == "board"
    assert night.windows[0].days == frozenset({5, 6})
    christmas = book.ahead("board", at(2026, 12, 23, 12), at(2026, 12, 26, 0))
    assert [(s.start, s.end) for s in christmas] == [(at(2026, 12, 24, 0), at(2026, 12, 25, 0))]
    assert book.from_site_file("evening")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('tariff = "high"', 'tariff = "peak"'), "tariff 'peak' is not a [[tariff_periods]] name"),
        (('node = "board"', 'node = "boards"'), "node 'boards' does not exist"),
        (('["sat-sun"]', '["sat-sunday"]'), "unknown day 'sat-sunday'"),
        (("power_limit_kw = 150\n", ""), "give power_limit_kw and/or phase_current_limit_a"),
        (('name = "board-night"', 'name = "evening"'), "evening given twice"),
    ],
)
def test_schedule_mistakes_name_the_field_and_the_fix(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = tmp_path / "site.toml"
    path.write_text(SITE_FILE + SCHEDULES.replace(*change))
    with pytest.raises(ConfigError) as error:
        load_site(path)
    assert message in str(error.value)
    assert str(path) in str(error.value)


# -- the planner plans over the schedule ahead ---------------------------------------------

MONDAY_10 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC).timestamp()
NEED_KWH = 12.0
CUT_KW = 5.0


def cut(node: str) -> str:
    """A schedule that cuts `node` to 5 kW from 10:30."""
    return f"""
[[schedules]]
name = "late-cut"
node = "{node}"
power_limit_kw = {CUT_KW}
windows = [{{ days = ["mon"], start = "10:30", end = "11:00" }}]
"""


def charge_for_an_hour(extra: str, api_cut: str | None) -> tuple[float, float, LimitBook]:
    """cp-1 needs 12 kWh by 11:00; from 10:30 the site (or the board the chargers are on)
    may take 5 kW. Either a schedule says so from the start, or an API lease on `api_cut`
    says it at 10:30 (nobody knew ahead). Returns what cp-1 got and the most the chargers
    drew together from 10:30:05 on, W."""
    limits = LimitBook()
    site = PlannedSite.build(SimSite.build(), extra, limits)
    site.planner.horizon.deadlines.wall_offset_s = MONDAY_10
    index = site.planner.allocator.connector_index(("cp-1", 1))
    site.planner.horizon.deadlines.set_need(
        index, NEED_KWH * 1000, MONDAY_10 + 3600, NeedSource.API
    )
    site.run(1800)
    if api_cut is not None:
        limits.set(
            api_cut, LimitSource.API, Limit(power_kw=CUT_KW), now=site.now, lease_s=1800, origin="t"
        )
    site.run(5)
    most_w = 0.0
    for _ in range(1795):
        site.cycle()
        most_w = max(most_w, sum(c.draw_a for c in site.sim.chargers) * 3 * V)
    return site.planner.horizon.deadlines.status(index, site.now).energy_kwh, most_w, limits


@pytest.mark.timeout(300)  # two hours of cycles, without Trio
@pytest.mark.parametrize("node", ["grid", "board"])
def test_a_schedule_ahead_makes_the_deadline_session_charge_before_the_cut(node: str) -> None:
    blind_kwh, _, _ = charge_for_an_hour("", api_cut=SITE if node == "grid" else node)
    assert blind_kwh < NEED_KWH - 1  # fair share until late, then only 5 kW for everyone
    planned_kwh, most_w, limits = charge_for_an_hour(cut(node), api_cut=None)
    assert planned_kwh >= NEED_KWH * 0.99
    assert most_w <= CUT_KW * 1000 + 1e-6
    sources = [(e.source, e.origin) for e in limits.audit() if e.action.value == "set"]
    assert (LimitSource.SCHEDULE, "schedule late-cut") in sources
