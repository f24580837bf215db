"""The dashboard's battery and PV card in a real headless Chromium: shown with the snapshot's
`energy`, hidden on a site without battery and PV."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from hubgate.config.services import Api
from hubgate.state import EnergyState
from tests.support.api import TOKEN, RunningApi, small_site, snapshot, start_api
from tests.support.chromium import new_page, open_chromium

pytestmark = pytest.mark.peers("chromium")

ENERGY = EnergyState(
    battery_mode="peak-shaving",
    battery_soc_percent=62.4,
    battery_power_kw=9.5,
    battery_command_kw=10.0,
    pv_power_kw=3.25,
    grid_import_kw=24.9,
    peak_target_kw=25.0,
    pv_budget_kw=0.0,
    reasons=("EV demand would import 35.9 kW over the 25.0 kW target: discharge 10.0 kW",),
)


async def publish(api: RunningApi, with_energy: trio.Event) -> None:
    for cycle in range(1, 100_000):
        energy = ENERGY if with_energy.is_set() else None
        api.ctx.hub.publish(snapshot(cycle).model_copy(update={"energy": energy}))
        await trio.sleep(0.05)


@pytest.mark.timeout(90)  # after its deadline, so that Trio ends it cleanly
async def test_energy_card_follows_the_snapshot(
    nursery: trio.Nursery, examples_dir: Path, tmp_path: Path
) -> None:
    api = await start_api(nursery, small_site(examples_dir, Api(port=0, token=TOKEN)))
    with_energy = trio.Event()
    nursery.start_soon(publish, api, with_energy)
    card = "document.querySelector('#energy-card')"
    with trio.fail_after(60):
        async with open_chromium(tmp_path / "profile") as (devtools, _):
            page = await new_page(devtools, 1280, 900)
            await page.navigate(f"{api.url}/")
            await page.wait_for("document.querySelector('#link').textContent === 'live'")
            await page.wait_for("Number(document.querySelector('#chart').dataset.samples) >= 2")
            assert await page.evaluate(f"{card}.hidden") is True
            with_energy.set()
            await page.wait_for(f"!{card}.hidden")
            pairs = await page.evaluate(
                "[...document.querySelectorAll('#energy dd')].map(d => "
                "d.previousElementSibling.textContent + '=' + d.textContent)"
            )
            assert pairs == [
                "Battery=peak-shaving",
                "State of charge=62 %",
                "Battery power=9.5 kW",
                "Command=10.0 kW",
                "PV=3.3 kW",
                "Grid import=24.9 kW (target 25.0 kW)",
                "PV-mode budget=0.0 kW",
            ]
            why = await page.evaluate("document.querySelector('#energy-why').textContent")
            assert "discharge 10.0 kW" in why
            assert devtools.exceptions == [], devtools.exceptions
