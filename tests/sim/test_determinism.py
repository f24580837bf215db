"""A scenario's seed fixes everything: same seed, same run; another seed, another run."""

from __future__ import annotations

from pathlib import Path

from hubgate.sim import ClosedLoop, NaiveEqualShareController, Simulation, load_scenario, run_fast

SCENARIO = Path(__file__).resolve().parents[2] / "examples" / "scenarios" / "charger-offline.toml"


def run(seed: int | None = None) -> tuple[str, list[list[float]], list[str | None]]:
    loaded = load_scenario(SCENARIO)
    if seed is not None:
        header = loaded.scenario.scenario.model_copy(update={"seed": seed})
        scenario = loaded.scenario.model_copy(update={"scenario": header})
        loaded = type(loaded)(scenario, loaded.site, loaded.path)
    sim = Simulation(loaded)
    run_fast(ClosedLoop(sim, NaiveEqualShareController(sim)), 300)
    kinds = [ev.kind if ev else None for ev in sim.evs]
    return sim.recorder.summary().to_json(), [list(s) for s in sim.recorder.currents], kinds


def test_same_seed_same_run() -> None:
    assert run() == run()


def test_another_seed_another_run() -> None:
    first, second = run(seed=1), run(seed=2)
    assert first[0] != second[0]
    assert first[2] != second[2]
