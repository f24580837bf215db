"""GET/PUT/DELETE /prices: an optional price series, kept from now on."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import trio

from hubgate.config.model import Api
from hubgate.control.prices import PriceSeries
from tests.support.api import AUTH, TOKEN, small_site, start_api

NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC).timestamp()


async def test_prices_are_put_listed_from_now_and_cleared(
    nursery: trio.Nursery, examples_dir: Path
) -> None:
    series = PriceSeries()
    site = small_site(examples_dir, Api(port=0, token=TOKEN))
    api = await start_api(nursery, site, wall_clock=NOON, prices=series)
    day = {"start": "2026-03-02T11:00:00+01:00", "interval_min": 60, "prices": [0.3, 0.2, 0.1]}
    async with api.client:
        assert (await api.client.put("/api/v1/prices", json=day)).status_code == 401
        put = await api.client.put("/api/v1/prices", json=day, headers=AUTH)
        assert put.status_code == 200, put.text
        # 11:00+01:00 is 10:00 UTC: at noon UTC only the third hour is still ahead.
        assert [(p["start"] - NOON, p["price"]) for p in put.json()] == [(0.0, 0.1)]
        assert series.at(NOON + 10) == 0.1
        listed = await api.client.get("/api/v1/prices")
        assert listed.json() == put.json()
        for bad in (
            {**day, "prices": []},
            {**day, "prices": ["0.3"]},
            {**day, "interval_min": 20},
            {**day, "start": "2026-03-02T11:00:00"},
        ):
            response = await api.client.put("/api/v1/prices", json=bad, headers=AUTH)
            assert response.status_code == 422, bad
        cleared = await api.client.delete("/api/v1/prices", headers=AUTH)
        assert cleared.json() == []
    assert not series
