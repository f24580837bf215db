"""Time: fixed steps, as fast as possible or paced against Trio's (mock) clock."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import trio
import trio.testing

from hubgate.sim import (
    ClosedLoop,
    NaiveEqualShareController,
    Simulation,
    load_scenario,
    run_fast,
    run_paced,
)


async def test_paced_run_follows_the_clock_at_the_given_speed(
    write_scenario: Callable[..., Path], autojump_clock: trio.testing.MockClock
) -> None:
    sim = Simulation(load_scenario(write_scenario()))
    loop = ClosedLoop(sim, NaiveEqualShareController(sim))
    start = trio.current_time()
    seen: list[tuple[float, float]] = []
    await run_paced(loop, 60, speed=10, on_step=lambda s: seen.append((s.now, trio.current_time())))
    assert sim.now == 60
    # Step k starts at clock k / 10 and leaves the simulation at (k + 1) s.
    assert [(n, round(c - start, 9)) for n, c in seen[:3]] == [(1.0, 0.0), (2.0, 0.1), (3.0, 0.2)]
    assert seen[-1][1] - start == pytest.approx(5.9)


async def test_real_time_run_takes_real_clock_time(
    write_scenario: Callable[..., Path], autojump_clock: trio.testing.MockClock
) -> None:
    sim = Simulation(load_scenario(write_scenario()))
    start = trio.current_time()
    await run_paced(ClosedLoop(sim), 30, speed=1)
    assert sim.steps == 30
    assert trio.current_time() - start == pytest.approx(29.0)


async def test_paced_and_fast_runs_agree(
    write_scenario: Callable[..., Path], autojump_clock: trio.testing.MockClock
) -> None:
    path = write_scenario()
    paced, fast = Simulation(load_scenario(path)), Simulation(load_scenario(path))
    await run_paced(ClosedLoop(paced, NaiveEqualShareController(paced)), 120, speed=4)
    run_fast(ClosedLoop(fast, NaiveEqualShareController(fast)), 120)
    assert paced.recorder.summary() == fast.recorder.summary()


async def test_speed_must_be_positive(write_scenario: Callable[..., Path]) -> None:
    sim = Simulation(load_scenario(write_scenario()))
    with pytest.raises(ValueError, match="speed must be above 0"):
        await run_paced(ClosedLoop(sim), 10, speed=0)


def test_sub_second_steps_cover_the_duration(
    write_scenario: Callable[..., Path], scenario_text: str
) -> None:
    sim = Simulation(
        load_scenario(
            write_scenario(scenario=scenario_text.replace("seed = 3", "seed = 3\nstep_s = 0.1"))
        )
    )
    run_fast(ClosedLoop(sim, NaiveEqualShareController(sim)), 12)
    assert sim.steps == 120
    assert sim.recorder.summary().simulated_s == pytest.approx(12.0)
    assert sim.recorder.summary().energy_delivered_kwh > 0
