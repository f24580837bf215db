"""The dashboard in a real headless Chromium: it loads, the chart follows the live stream,
and a site limit set from the page's form lands in the LimitBook as an API lease."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import trio

from hubgate.config.services import Api
from hubgate.control.limits import SITE, Limit, LimitSource
from hubgate.devices.model import ChargingTransaction
from hubgate.records.sessions import SessionRecorder
from tests.support.api import TOKEN, RunningApi, small_site, snapshot, start_api
from tests.support.chromium import new_page, open_chromium
from tests.support.states import connector

pytestmark = pytest.mark.peers("chromium")

CHART = "document.querySelector('#chart')"


async def publish_cycles(api: RunningApi) -> None:
    """Stand-in for the control loop: a snapshot every 50 ms whose grid limit is the one in force."""
    configured = api.ctx.site.grid.phase_current_limit_a
    for cycle in range(1, 100_000):
        in_force = api.ctx.limits.in_force(SITE, api.ctx.clock()).limit.phase_a
        limit = configured if in_force is None else tuple(map(min, configured, in_force))
        wave = 8 * math.sin(cycle / 5)
        state = snapshot(cycle, grid_a=(45 + wave, 38 - wave, 30 + wave / 2))
        grid = state.nodes[0].model_copy(
            update={
                "limit_a": limit,
                "limit_sources": ("api", "config") if in_force else ("config",),
            }
        )
        api.ctx.hub.publish(state.model_copy(update={"nodes": (grid, *state.nodes[1:])}))
        await trio.sleep(0.05)


@pytest.mark.timeout(90)  # after its deadline, so that Trio ends it cleanly
async def test_dashboard_live_chart_and_limit_form(
    nursery: trio.Nursery, examples_dir: Path, tmp_path: Path
) -> None:
    api = await start_api(nursery, small_site(examples_dir, Api(port=0, token=TOKEN)))
    recorder = SessionRecorder(api.ctx.events.store, 1_700_000_000.0)
    for minute, kwh in enumerate((20.0, 21.5)):
        state = connector("cp-1#1", status="C", energy_kwh=kwh, reason="GRID_OPERATOR")
        tx = {"cp-1#1": ChargingTransaction("5", "FLEET-9")}
        recorder.observe((state,), tx, 1_700_000_000.0 + 60.0 * minute)
    nursery.start_soon(publish_cycles, api)
    with trio.fail_after(60):
        async with open_chromium(tmp_path / "profile") as (devtools, log):
            page = await new_page(devtools, 1280, 900)
            await page.navigate(f"{api.url}/")

            # The chart follows the stream: more samples, a newer cycle, other pixels.
            await page.wait_for(f"Number({CHART}.dataset.samples) >= 3")
            first_cycle = int(await page.evaluate(f"{CHART}.dataset.lastCycle"))
            first_pixels = await page.evaluate(f"{CHART}.toDataURL()")
            await page.wait_for(f"Number({CHART}.dataset.lastCycle) >= {first_cycle + 5}")
            assert await page.evaluate(f"{CHART}.toDataURL()") != first_pixels
            assert await page.evaluate("document.querySelector('#link').textContent") == "live"
            assert await page.evaluate(
                "[...document.querySelectorAll('#connectors tbody tr')].map(r => r.dataset.connector)"
            ) == ["cp-1#1", "cp-2#1", "wb-1#1", "wb-2#1"]
            assert await page.evaluate(
                "[...document.querySelectorAll('#tree li')].map(li => li.dataset.node)"
            ) == ["grid", "board"]
            session = "document.querySelector('#connectors tbody tr td.session')"
            assert (await page.evaluate(f"{session}.textContent")).startswith("12.5 / 40.0 kWh by ")
            assert (await page.evaluate(f"{session}.textContent")).endswith("3.2 kWh short")
            assert ", EV max 16.0 A" in await page.evaluate(f"{session}.textContent")
            assert await page.evaluate(f"{session}.classList.contains('at-risk')")
            assert await page.evaluate("document.querySelectorAll('#devices tbody tr').length") == 2
            assert await page.evaluate("document.querySelectorAll('#events li').length") == 2
            session = await page.wait_for(
                "(r => r && r.textContent)(document.querySelector('#sessions tbody tr'))"
            )
            assert "cp-1#1FLEET-9" in session, session
            assert "1.50" in session, session  # kWh
            assert "GRID_OPERATOR 60 s" in session, session

            # The operator sets the site limit from the form.
            await page.submit_limit("50, 55, 60", 120, TOKEN)
            result = await page.wait_for(
                "(t => t.startsWith('accepted') && t)(document.querySelector('#limit-result').textContent)"
            )
            # The site file's 50 kW less its margin (48.62 kW) in force beside the API's currents.
            assert result == "accepted: in force 50 / 55 / 60 A, 48.6 kW from api, config"
            (lease,) = [le for le in api.ctx.limits.leases() if le.source is LimitSource.API]
            assert (lease.target, lease.limit) == (SITE, Limit((50.0, 55.0, 60.0)))
            assert lease.expires_at is not None
            assert lease.expires_at - lease.set_at == pytest.approx(120)
            # ... and the next cycles show it as the limit in force.
            await page.wait_for(
                "document.querySelector('#limit-now').textContent.startsWith('in force: 50 / 55 / 60 A')"
            )

            await page.screenshot(tmp_path / "dashboard-laptop.png")
            await page.resize(820, 1180)  # a tablet, portrait
            await page.wait_for(f"{CHART}.clientWidth < 800")
            assert await page.evaluate(
                "document.documentElement.scrollWidth <= window.innerWidth"
            ), "the page scrolls sideways on a tablet"
            await page.screenshot(tmp_path / "dashboard-tablet.png")

            assert devtools.exceptions == [], devtools.exceptions
    print(f"screenshots: {tmp_path}/dashboard-laptop.png, dashboard-tablet.png")
    assert (tmp_path / "dashboard-laptop.png").stat().st_size > 10_000, "".join(log)


@pytest.mark.timeout(90)  # after its deadline, so that Trio ends it cleanly
async def test_dashboard_with_closed_reads_asks_for_the_token(
    nursery: trio.Nursery, examples_dir: Path, tmp_path: Path
) -> None:
    site = small_site(examples_dir, Api(port=0, token=TOKEN, open_reads=False))
    api = await start_api(nursery, site)
    nursery.start_soon(publish_cycles, api)
    link = "document.querySelector('#link').textContent"
    with trio.fail_after(60):
        async with open_chromium(tmp_path / "profile") as (devtools, _):
            page = await new_page(devtools, 1024, 768)
            await page.navigate(f"{api.url}/")
            await page.wait_for(f"{link} === 'token needed'")
            assert await page.evaluate(f"{CHART}.dataset.samples") == "0"
            await page.evaluate(
                """(() => {
                    const input = document.getElementById('limit-form').token;
                    input.value = '{TOKEN}';
                    input.dispatchEvent(new Event('change'));
                })()""".replace("{TOKEN}", TOKEN)
            )
            await page.wait_for(f"{link} === 'live' && Number({CHART}.dataset.samples) >= 2")
