"""Site simulator speed: simulated seconds per wall-clock second for the 500-connector depot.

The target is at least real time (1x) on one core; the figure per group is in
`extra_info["simulated_s_per_wall_s"]` (median round).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hubgate.sim import ClosedLoop, NaiveEqualShareController, Simulation, load_scenario, run_fast

DEPOT_500 = Path(__file__).resolve().parent.parent / "examples" / "scenarios" / "depot-500.toml"
ROUND_S = 60.0
"""Simulated seconds per benchmark round."""


@pytest.fixture(scope="module")
def warm_depot() -> Simulation:
    """The depot after ten simulated minutes, so that every EV is charging."""
    sim = Simulation(load_scenario(DEPOT_500))
    run_fast(ClosedLoop(sim, NaiveEqualShareController(sim)), 600)
    return sim


def report(benchmark: Any, simulated_s: float) -> None:
    if benchmark.stats is not None:
        benchmark.extra_info["simulated_s_per_wall_s"] = simulated_s / benchmark.stats.stats.median


@pytest.mark.benchmark(group="sim-depot-500-closed-loop")
@pytest.mark.parametrize("impl", ["hubgate"])
def test_closed_loop_with_naive_controller(
    benchmark: Any, warm_depot: Simulation, impl: str
) -> None:
    loop = ClosedLoop(warm_depot, NaiveEqualShareController(warm_depot))
    benchmark(run_fast, loop, ROUND_S)
    report(benchmark, ROUND_S)
    assert len(warm_depot.tree.connectors) == 500
    assert sum(ev is not None for ev in warm_depot.evs) > 300


@pytest.mark.benchmark(group="sim-depot-500-physics")
@pytest.mark.parametrize("impl", ["hubgate"])
def test_physics_only(benchmark: Any, warm_depot: Simulation, impl: str) -> None:
    benchmark(run_fast, ClosedLoop(warm_depot), ROUND_S)
    report(benchmark, ROUND_S)
    assert warm_depot.recorder.energy_kwh > 0
