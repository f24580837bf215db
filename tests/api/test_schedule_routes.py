"""GET/PUT/DELETE /schedules: the site file's and the API's schedules, the next 24 hours."""

from __future__ import annotations

from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

import trio

from hubgate.config.model import Api
from hubgate.control.limits import SITE, Limit
from hubgate.control.schedules import Schedule, ScheduleBook, Window
from tests.support.api import AUTH, TOKEN, small_site, start_api

MONDAY_NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC).timestamp()


def at(hour: int) -> float:
    """Monday 2026-03-02 at `hour` UTC (30: Tuesday 06:00)."""
    return datetime(2026, 3, 2, tzinfo=UTC).timestamp() + hour * 3600


def site_file_book() -> ScheduleBook:
    """The site file's tariff period `high` and schedule `evening` (30 kW in it)."""
    high = (Window(time(17), time(20), frozenset(range(5))),)
    evening = Schedule("evening", SITE, Limit(power_kw=30), high, tariff="high")
    return ScheduleBook([evening], tariffs={"high": high})


async def test_schedules_are_listed_put_and_deleted_with_the_schedule_ahead(
    nursery: trio.Nursery, examples_dir: Path
) -> None:
    book = site_file_book()
    site = small_site(examples_dir, Api(port=0, token=TOKEN))
    api = await start_api(nursery, site, wall_clock=MONDAY_NOON, schedules=book)
    async with api.client:
        night: dict[str, Any] = {
            "node": "board",
            "limit": {"phase_a": [20, 20, 20]},
            "windows": [{"days": ["mon-fri"], "start": "22:00", "end": "06:00"}],
        }
        url = "/api/v1/schedules/board-night"
        assert (await api.client.put(url, json=night)).status_code == 401
        put = await api.client.put(url, json=night, headers=AUTH)
        assert put.status_code == 200, put.text
        assert put.json()["origin"] == "api 127.0.0.1"
        assert put.json()["windows"][0]["days"] == ["mon", "tue", "wed", "thu", "fri"]
        tariff = {"limit": {"power_kw": 25}, "tariff": "high"}
        assert (
            await api.client.put("/api/v1/schedules/also-high", json=tariff, headers=AUTH)
        ).status_code == 200

        listed = (await api.client.get("/api/v1/schedules")).json()
        assert [(s["name"], s["site_file"]) for s in listed["schedules"]] == [
            ("also-high", False),
            ("board-night", False),
            ("evening", True),
        ]
        ahead = [
            (s["target"], s["start"], s["end"], s["limit"], s["schedules"]) for s in listed["ahead"]
        ]
        assert ahead == [
            (
                "board",
                at(22),
                at(30),
                {"phase_a": [20.0, 20.0, 20.0], "power_kw": None},
                ["board-night"],
            ),
            ("site", at(17), at(20), {"phase_a": None, "power_kw": 25.0}, ["also-high", "evening"]),
        ]

        deleted = await api.client.delete(url, headers=AUTH)
        assert deleted.status_code == 200
        assert (await api.client.delete(url, headers=AUTH)).status_code == 404
        assert [s.name for s in book.schedules()] == ["also-high", "evening"]


async def test_schedule_writes_that_cannot_hold_are_refused_with_the_reason(
    nursery: trio.Nursery, examples_dir: Path
) -> None:
    book = site_file_book()
    site = small_site(examples_dir, Api(port=0, token=TOKEN))
    api = await start_api(nursery, site, wall_clock=MONDAY_NOON, schedules=book)
    window = [{"start": "17:00", "end": "18:00"}]
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        ("evening", {"limit": {"power_kw": 10}, "windows": window}, 409, "the site file's"),
        (
            "x",
            {"node": "attic", "limit": {"power_kw": 10}, "windows": window},
            404,
            "no node 'attic'",
        ),
        ("x", {"limit": {"power_kw": 10}, "tariff": "night"}, 422, "tariff 'night' is not"),
        ("x", {"limit": {"power_kw": 10}}, 422, "give exactly one of 'tariff' or 'windows'"),
        ("x", {"limit": {}, "windows": window}, 422, "give power_limit_kw and/or"),
        ("x", {"limit": {"power_kw": "10"}, "windows": window}, 422, "valid number"),
        (
            "x",
            {"limit": {"power_kw": 10}, "windows": [{**window[0], "days": ["funday"]}]},
            422,
            "unknown day 'funday'",
        ),
        ("no spaces", {"limit": {"power_kw": 10}, "windows": window}, 422, "should match pattern"),
    ]
    async with api.client:
        for name, body, code, why in cases:
            response = await api.client.put(f"/api/v1/schedules/{name}", json=body, headers=AUTH)
            assert (response.status_code, why in response.text) == (code, True), (name, body)
        assert (
            await api.client.delete("/api/v1/schedules/evening", headers=AUTH)
        ).status_code == 409
    assert [s.name for s in book.schedules()] == ["evening"]
