"""The running demo's dashboard in a real headless Chromium: it loads, the chart follows the
control loop, a site limit set from the page's form reaches the allocator, and the scenario's
grid-operator step shows as the limit in force, drawn and listed among the events, newest first.

The demo is started as `hubgate demo` starts it (the simulated site in protocol mode, the
gateway controlling it, simulated time paced by the control cycle), on free ports and with a
write token. The screenshot is kept under pytest's `tmp_path`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from hubgate.control.limits import SITE, Limit, LimitSource
from hubgate.runtime.demo import open_demo
from hubgate.runtime.gateway import dashboard_url
from hubgate.sim.scenario_loader import load_scenario
from tests.support.chromium import new_page, open_chromium
from tests.support.e2e import run_for
from tests.support.wait import wait_until

SCENARIO = Path(__file__).parent / "e2e-scenario.toml"
TOKEN = "demo-token-0123456789"
LIMIT_A = (50.0, 55.0, 60.0)
CHART = "document.querySelector('#chart')"


def grid(state: dict[str, Any]) -> dict[str, Any]:
    (node,) = [n for n in state["nodes"] if n["kind"] == "grid"]
    return node


async def until_state(
    api: httpx.AsyncClient, check: Callable[[dict[str, Any]], bool], timeout_s: float = 20.0
) -> dict[str, Any]:
    """The first site state (from the API) whose grid node passes `check`."""

    async def passing() -> dict[str, Any] | None:
        state: dict[str, Any] = (await api.get("/state")).json()
        return state if check(grid(state)) else None

    return await wait_until(passing, "a site state that passes the check", timeout_s)


@pytest.mark.peers("chromium")
@pytest.mark.timeout(150)  # after the deadline below, so that Trio ends the test cleanly
async def test_demo_dashboard_limit_from_the_page_reaches_the_allocator(tmp_path: Path) -> None:
    loaded = load_scenario(SCENARIO)
    site = loaded.site.model_copy(
        update={"api": loaded.site.api.model_copy(update={"token": TOKEN})}
    )
    calm = loaded.scenario.model_copy(update={"events": ()})  # no step under the API's limit
    loaded = dataclasses.replace(loaded, site=site, scenario=calm)
    with trio.fail_after(120):  # ~20 s on a quiet machine; Chromium starts slowly under load
        async with open_demo(loaded) as demo, trio.open_nursery() as nursery:
            nursery.start_soon(demo.pace)
            gateway = demo.gateway
            url = dashboard_url(gateway.site, gateway.ports["api"])
            api = httpx.AsyncClient(base_url=f"{url}api/v1", timeout=10)
            async with api, open_chromium(tmp_path / "profile") as (devtools, log):
                page = await new_page(devtools, 1280, 900)
                await page.navigate(url)

                # The page loads and its chart follows the control loop's cycles.
                await page.wait_for(f"Number({CHART}.dataset.samples) >= 3", timeout_s=15)
                first_cycle = int(await page.evaluate(f"{CHART}.dataset.lastCycle"))
                await page.wait_for(f"Number({CHART}.dataset.lastCycle) >= {first_cycle + 4}")
                assert await page.evaluate("document.querySelector('#link').textContent") == "live"
                # The demo charges above the limit about to be set.
                before = await until_state(api, lambda g: max(g["commanded_a"]) > max(LIMIT_A))
                assert "api" not in grid(before)["limit_sources"]

                # The operator sets the site limit from the page's form, with the token.
                await page.submit_limit("50, 55, 60", 120, TOKEN)
                result = await page.wait_for(
                    "(t => (t.startsWith('accepted') || t.startsWith('refused')) && t)"
                    "(document.querySelector('#limit-result').textContent)"
                )
                assert result.startswith("accepted: in force 50 / 55 / 60 A"), result
                assert "api" in result.partition(" from ")[2].split(", "), result
                set_cycle = (await api.get("/state")).json()["cycle"]  # every later cycle has it

                # The lease is in the LimitBook and the API lists it as the site's limit.
                (lease,) = [
                    le for le in gateway.loop.limits.leases() if le.source is LimitSource.API
                ]
                assert (lease.target, lease.limit) == (SITE, Limit(LIMIT_A))
                (site_limits,) = [
                    t for t in (await api.get("/limits")).json() if t["kind"] == "site"
                ]
                assert site_limits["in_force"]["phase_a"] == list(LIMIT_A)

                # Later cycles allocate under it: the snapshot shows it in force ...
                await page.wait_for(
                    "document.querySelector('#limit-now').textContent"
                    ".startsWith('in force: 50 / 55 / 60 A')"
                )
                await page.wait_for(f"Number({CHART}.dataset.lastCycle) > {set_cycle}")
                state = (await api.get("/state")).json()
                assert state["cycle"] > set_cycle
                node = grid(state)
                assert node["limit_a"] == list(LIMIT_A)
                assert "api" in node["limit_sources"]
                assert all(c <= a + 1e-6 for c, a in zip(node["commanded_a"], LIMIT_A, strict=True))
                # ... and the allocator's input held the cut down to it as base load.
                records = (await api.get("/decisions", params={"last": 5})).json()
                later = [r for r in records if r["cycle"] > set_cycle]
                assert later, records
                caps = gateway.loop.model.caps_a[0]
                for record in later:
                    base = record["inputs"]["base_load_a"]["grid"]
                    assert all(
                        b >= cap - a - 1e-6 for b, cap, a in zip(base, caps, LIMIT_A, strict=True)
                    )

                print(f"grid commanded {grid(before)['commanded_a']} -> {node['commanded_a']} A")
                shot = await page.screenshot(tmp_path / "demo-dashboard.png")
                assert devtools.exceptions == [], devtools.exceptions
            nursery.cancel_scope.cancel()
    print(f"screenshot: {shot}")
    assert shot.stat().st_size > 10_000, "".join(log)


@pytest.mark.peers("chromium")
@pytest.mark.timeout(150)
async def test_demo_dashboard_shows_the_grid_operator_step(tmp_path: Path) -> None:
    """The scenario's grid operator steps to 30 % of 69 kW (20.7 kW: 30 A per phase), 20
    simulated seconds (5-10 wall seconds) after start. Its other events are left out, and the
    step need not be the latest event: Chromium, started under load, may look after the next
    one (a device lost for a moment then; cp-2 offline at 30 s in the scenario)."""
    loaded = load_scenario(SCENARIO)
    events = tuple(e for e in loaded.scenario.events if e.kind == "grid-limit")
    step_only = loaded.scenario.model_copy(update={"events": events})
    loaded = dataclasses.replace(loaded, scenario=step_only)
    with trio.fail_after(120):
        async with open_demo(loaded) as demo, trio.open_nursery() as nursery:
            nursery.start_soon(run_for, demo, 10_000)  # whole simulated seconds
            gateway = demo.gateway
            url = dashboard_url(gateway.site, gateway.ports["api"])
            api = httpx.AsyncClient(base_url=f"{url}api/v1", timeout=10)
            async with api, open_chromium(tmp_path / "profile") as (devtools, log):
                page = await new_page(devtools, 1280, 900)
                await page.navigate(url)
                step = await until_state(
                    api,
                    lambda g: g["limit_source"] == "grid-operator" and g["limit_a"][0] < 31,
                    timeout_s=60,
                )
                assert grid(step)["limit_a"] == [30.0, 30.0, 30.0]
                assert grid(step)["power_limit_kw"] == pytest.approx(20.7)
                await page.wait_for(
                    "document.querySelector('#limit-now').textContent"
                    " === 'in force: 30 / 30 / 30 A, 20.7 kW from grid operator'"
                )
                bar = "document.querySelector('#tree li[data-node=grid]')"
                assert await page.evaluate(f"{bar}.dataset.source") == "grid-operator"
                assert "30 A · 21 kW" in await page.evaluate(f"{bar}.textContent")
                # The chart's limit line is at 30 A now, after the cap's 100 A.
                chart = await page.evaluate(f"({{...{CHART}.dataset}})")
                top, bottom = float(chart["scaleTop"]), float(chart["scaleBottom"])
                y30 = float(chart["plotTop"]) + (top - 30) / (top - bottom) * float(
                    chart["plotHeight"]
                )
                assert float(chart["limitY"]) == pytest.approx(y30, abs=0.5)
                # The event list shows the step, newest first: above every earlier event.
                first = await page.wait_for(
                    "(li => li && li.textContent)"
                    "(document.querySelector('#events li[data-category=grid-operator]'))"
                )
                assert "grid-operator limit 20.7 kW (was 69 kW, -48.3 kW)" in first, first
                ids = await page.evaluate(
                    "[...document.querySelectorAll('#events li')].map(li => +li.dataset.event)"
                )
                assert ids == sorted(ids, reverse=True), ids
                await page.screenshot(tmp_path / "demo-step.png")
                assert devtools.exceptions == [], devtools.exceptions
            nursery.cancel_scope.cancel()
    assert (tmp_path / "demo-step.png").stat().st_size > 10_000, "".join(log)
