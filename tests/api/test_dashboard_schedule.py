"""The dashboard's demand card and schedule ahead in a real headless Chromium: the demand card
follows the snapshot's `demand`, the schedule card lists the next 24 hours of `/schedules`."""

from __future__ import annotations

from datetime import UTC, datetime, time
from pathlib import Path

import pytest
import trio

from hubgate.config.model import Api
from hubgate.control.limits import SITE, Limit
from hubgate.control.schedules import Schedule, ScheduleBook, Window
from hubgate.state import DemandSnapshot
from tests.support.api import TOKEN, RunningApi, small_site, snapshot, start_api
from tests.support.chromium import new_page, open_chromium

pytestmark = pytest.mark.peers("chromium")

NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
DEMAND = DemandSnapshot(
    interval_start=NOON,
    interval_min=15,
    average_kw=96.0,
    projection_kw=131.5,
    target_kw=120.0,
    month_peak_kw=118.2,
    cap_kw=88.0,
)


async def publish(api: RunningApi) -> None:
    for cycle in range(1, 100_000):
        api.ctx.hub.publish(snapshot(cycle).model_copy(update={"demand": DEMAND}))
        await trio.sleep(0.05)


@pytest.mark.timeout(90)  # after its deadline, so that Trio ends it cleanly
async def test_demand_card_and_schedule_ahead(
    nursery: trio.Nursery, examples_dir: Path, tmp_path: Path
) -> None:
    evening = Schedule("evening", SITE, Limit(power_kw=150), (Window(time(17), time(20)),))
    night = Schedule("board-night", "board", Limit((40, 40, 40)), (Window(time(22), time(6)),))
    book = ScheduleBook([evening, night])
    site = small_site(examples_dir, Api(port=0, token=TOKEN))
    api = await start_api(nursery, site, wall_clock=NOON.timestamp(), schedules=book)
    nursery.start_soon(publish, api)
    with trio.fail_after(60):
        async with open_chromium(tmp_path / "profile") as (devtools, _):
            page = await new_page(devtools, 1280, 900)
            await page.navigate(f"{api.url}/")
            await page.wait_for("!document.querySelector('#demand-card').hidden")
            pairs = await page.evaluate(
                "[...document.querySelectorAll('#demand dd')].map(d => "
                "d.previousElementSibling.textContent + '=' + d.textContent)"
            )
            assert pairs == [
                "Average so far=96.0 kW",
                "Projection=131.5 kW (over target)",
                "Target=120.0 kW",
                "Month's peak=118.2 kW",
                "Cap for the rest=88.0 kW",
            ]
            await page.wait_for("!document.querySelector('#schedule-card').hidden")
            rows = await page.evaluate(
                "[...document.querySelectorAll('#schedule li')].map(li => "
                "[li.dataset.target, Number(li.dataset.start), li.querySelector('b').textContent,"
                " li.textContent.includes('(evening)') || li.textContent.includes('(board-night)')])"
            )
            assert rows == [
                ["board", datetime(2026, 3, 2, 22, tzinfo=UTC).timestamp(), "40 / 40 / 40 A", True],
                ["site", datetime(2026, 3, 2, 17, tzinfo=UTC).timestamp(), "150.0 kW", True],
            ]
            assert devtools.exceptions == [], devtools.exceptions
