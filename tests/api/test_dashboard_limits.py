"""The dashboard's chart and node bars in a real headless Chromium: the chart opens filled
from the decision history, draws the limit in force as steps (checked on the canvas's
pixels after a grid-operator step) and export below zero in its own colour; the node bars
name the limit's source and show export as export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

from hubgate.config.services import Api
from hubgate.state import SiteState
from tests.support.api import TOKEN, RunningApi, grid_decision, small_site, snapshot, start_api
from tests.support.chromium import Page, new_page, open_chromium

pytestmark = pytest.mark.peers("chromium")

CHART = "document.querySelector('#chart')"
CAP_A = (78.0, 78.0, 78.0)
STEP_A = (30.0, 30.0, 30.0)  # 30 % of the small site's 69 kW: 20.7 kW at 230 V
HISTORY = 40


def state_at(cycle: int, *, step: bool) -> SiteState:
    """The small site at `cycle`: importing under its cap before the step, exporting under
    the grid operator's 20.7 kW after it."""
    state = snapshot(cycle, grid_a=(-24.0, -24.0, -24.0) if step else (45.0, 38.0, 30.0))
    grid = state.nodes[0].model_copy(
        update={
            "limit_a": STEP_A if step else CAP_A,
            "power_limit_kw": 20.7 if step else 53.82,
            "limit_source": "grid-operator" if step else "cap",
        }
    )
    return state.model_copy(update={"nodes": (grid, *state.nodes[1:])})


def fill_history(api: RunningApi) -> None:
    for cycle in range(1, HISTORY + 1):
        api.ctx.decisions.append(
            grid_decision(cycle, (40.0 + cycle % 5, 35.0, 30.0), CAP_A, 53.82, "cap")
        )


async def publish(api: RunningApi, page: Page, cycles: range, step_at: int) -> None:
    """Stand-in for the control loop: each of `cycles` once the chart has drawn the last;
    the step at cycle `step_at`. Not at a pace: the live stream sends the newest snapshot
    only, so a page on a loaded machine skips cycles, and the chart gives each sample it has
    the next slot (the step then stood left of its cycle's x: failed once at load 15-17)."""
    for cycle in cycles:
        api.ctx.hub.publish(state_at(cycle, step=cycle >= step_at))
        await page.wait_for(f"Number({CHART}.dataset.lastCycle) >= {cycle}")


PIXELS = """
((x, y, radius, colour) => {
  const canvas = document.querySelector('#chart');
  const ctx = canvas.getContext('2d');
  const want = colour.match(/[0-9a-f]{2}/gi).map((h) => parseInt(h, 16));
  const data = ctx.getImageData(Math.round(x) - radius, Math.round(y) - radius,
                                2 * radius + 1, 2 * radius + 1).data;
  for (let i = 0; i < data.length; i += 4) {
    const d = Math.abs(data[i] - want[0]) + Math.abs(data[i + 1] - want[1])
            + Math.abs(data[i + 2] - want[2]);
    if (d < 40) return true;
  }
  return false;
})
"""


async def colour_near(page: Page, x: float, y: float, var: str, radius: int = 2) -> bool:
    colour = await page.evaluate(
        f"getComputedStyle(document.documentElement).getPropertyValue('{var}').trim()"
    )
    return bool(await page.evaluate(f"{PIXELS}({x}, {y}, {radius}, {colour!r})"))


async def scale(page: Page) -> dict[str, Any]:
    data = await page.evaluate(f"({{...{CHART}.dataset}})")
    top, bottom = float(data["scaleTop"]), float(data["scaleBottom"])
    plot_top, plot_h = float(data["plotTop"]), float(data["plotHeight"])
    data["y"] = lambda value: plot_top + (top - value) / (top - bottom) * plot_h
    return data


@pytest.mark.timeout(90)  # after its deadline, so that Trio ends it cleanly
async def test_chart_opens_filled_draws_the_limit_in_force_and_export(
    nursery: trio.Nursery, examples_dir: Path, tmp_path: Path
) -> None:
    api = await start_api(nursery, small_site(examples_dir, Api(port=0, token=TOKEN)))
    fill_history(api)
    step_at = HISTORY + 30
    with trio.fail_after(60):
        async with open_chromium(tmp_path / "profile") as (devtools, log):
            page = await new_page(devtools, 1280, 900)
            await page.navigate(f"{api.url}/")
            # Filled from the decision history before any live snapshot arrived.
            await page.wait_for(f"Number({CHART}.dataset.samples) >= {HISTORY}")
            assert await page.evaluate(f"{CHART}.dataset.firstCycle") == "1"
            chart = await scale(page)
            right = float(chart["plotRight"]) - 3
            assert float(chart["limitY"]) == pytest.approx(chart["y"](78.0), abs=0.01)
            assert await colour_near(page, right, chart["y"](78.0), "--limit")

            await publish(api, page, range(HISTORY + 1, step_at + 6), step_at)
            chart = await scale(page)
            right = float(chart["plotRight"]) - 3  # the page may have grown a scrollbar
            # The limit line is drawn at the grid operator's limit, no longer at the cap ...
            assert float(chart["limitY"]) == pytest.approx(chart["y"](30.0), abs=0.01)
            assert await colour_near(page, right, chart["y"](30.0), "--limit")
            assert not await colour_near(page, right, chart["y"](78.0), "--limit")
            # ... as a step: level until the step's sample, then straight down to it.
            n, first = int(chart["samples"]), int(chart["firstCycle"])
            span, left = max(n, 60), float(chart["plotLeft"])
            width = float(chart["plotRight"]) - left

            def x_of(cycle: int) -> float:
                return left + (span - n + cycle - first) / (span - 1) * width

            assert await colour_near(page, x_of(step_at), chart["y"](54.0), "--limit")
            assert await colour_near(page, x_of(step_at - 2), chart["y"](78.0), "--limit")
            assert not await colour_near(page, x_of(step_at - 2), chart["y"](54.0), "--limit")
            # Export is below zero, in its own colour; before the step nothing is there.
            assert float(chart["scaleBottom"]) < 0
            assert await colour_near(page, right, chart["y"](-12.0), "--export", radius=0)
            before = x_of(step_at - 3)
            assert not await colour_near(page, before, chart["y"](-12.0), "--export", radius=1)

            # The node bars and the limit card name the limit in force and its source.
            grid = await page.evaluate(
                "(li => ({...li.dataset, text: li.textContent,"
                " bar: li.querySelector('.bar').className}))"
                "(document.querySelector('#tree li[data-node=grid]'))"
            )
            assert (grid["limitA"], grid["source"]) == ("30", "grid-operator")
            assert "exporting 24 A, limit 30 A · 21 kW" in grid["text"], grid["text"]
            assert "limit from grid operator" in grid["text"], grid["text"]
            assert grid["bar"] == "bar export"
            limit_now = await page.evaluate("document.querySelector('#limit-now').textContent")
            assert limit_now == "in force: 30 / 30 / 30 A, 20.7 kW from grid operator"
            await page.screenshot(tmp_path / "dashboard-step.png")
            assert devtools.exceptions == [], devtools.exceptions
    assert (tmp_path / "dashboard-step.png").stat().st_size > 10_000, "".join(log)
