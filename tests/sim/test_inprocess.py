"""`hubgate sim` judges hubgate itself: its own control loop on the simulated site, in-process.

Every shipped scenario (shortened) runs under hubgate's `ControlLoop` without a violation;
the in-process devices carry the scenario's events (a charger offline, a dead meter, the
grid operator's step, a cloud) to the loop like unreachable devices and readings; a run is
fixed by its seed; and hubgate delivers more than the naive stand-in at the same safety.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
import trio.testing

from hubgate.cli import EXIT_OK, main
from hubgate.control.loop import ControlLoop
from hubgate.sim import ClosedLoop, NaiveEqualShareController, Simulation, load_scenario, run_fast
from hubgate.sim.inprocess import control_loop, run_hubgate

SCENARIOS = sorted((Path(__file__).resolve().parents[2] / "examples" / "scenarios").glob("*.toml"))


def run(sim: Simulation, duration_s: float) -> ControlLoop:
    loop = control_loop(sim)
    trio.run(
        lambda: run_hubgate(sim, duration_s, loop=loop),
        clock=trio.testing.MockClock(autojump_threshold=0),
    )
    return loop


@pytest.mark.timeout(300)
@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_every_example_runs_under_hubgates_loop_without_violation(path: Path) -> None:
    loaded = load_scenario(path)
    sim = Simulation(loaded)
    first_event = min((e.at_s for e in loaded.scenario.events), default=0.0)
    duration = min(loaded.scenario.scenario.duration_s, first_event + 60.0, 150.0)
    loop = run(sim, duration)
    summary = sim.recorder.summary()
    assert summary.simulated_s == pytest.approx(duration)
    assert summary.energy_delivered_kwh > 0
    assert summary.violations == ()
    assert len(loop.decisions) >= duration - 2  # the loop ran every cycle


def test_the_events_reach_the_loop(write_scenario: Callable[..., Path], site_text: str) -> None:
    events = """
[[events]]
at_s = 20
kind = "charger-offline"
charger = "cp-3p"
[[events]]
at_s = 40
kind = "grid-limit"
percent = 30
[[events]]
at_s = 60
kind = "meter-dies"
meter = "meter-grid"
"""
    # 2 A kept free: the base load wanders between a reading and the next step
    site = site_text.replace("limit_a = 200\n", "limit_a = 200\nsafety_margin_a = 2\n", 1)
    sim = Simulation(load_scenario(write_scenario(events, site=site)))
    loop = run(sim, 80)
    notes = loop.decisions.recent(1)[0].notes
    assert any(n.startswith("cp-3p#1 unreachable") for n in notes)
    assert any(n.startswith("grid meter lost") for n in notes)
    # the grid operator's step from the scenario, written as the API source's lease
    assert loop.last_inputs is not None
    assert loop.last_inputs.grid_operator_w == pytest.approx(3 * 230 * (0.3 * 200 - 2))
    assert sim.recorder.summary().violations == ()


def summary_of(path: Path, duration_s: float) -> str:
    sim = Simulation(load_scenario(path))
    run(sim, duration_s)
    return sim.recorder.summary().to_json()


def test_a_run_is_fixed_by_its_seed(write_scenario: Callable[..., Path]) -> None:
    path = write_scenario()
    assert summary_of(path, 120) == summary_of(path, 120)


def test_hubgate_delivers_more_than_the_naive_controller_at_the_same_safety() -> None:
    loaded = load_scenario(SCENARIOS[[p.stem for p in SCENARIOS].index("grid-limit-step")])
    hubgate = Simulation(loaded)
    run(hubgate, 180)
    naive = Simulation(loaded)
    run_fast(ClosedLoop(naive, NaiveEqualShareController(naive)), 180)
    ours, theirs = hubgate.recorder.summary(), naive.recorder.summary()
    assert ours.violations == theirs.violations == ()
    assert ours.energy_delivered_kwh > theirs.energy_delivered_kwh


def test_cli_compares_both_controllers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], write_scenario: Callable[..., Path]
) -> None:
    out = tmp_path / "both.json"
    path = str(write_scenario())
    assert main(["sim", path, "--duration", "60", "--compare", "--json", str(out)]) == EXIT_OK
    text = capsys.readouterr().out
    header = text.splitlines()[1]
    assert header.split() == ["hubgate", "naive"]
    assert "energy delivered (kWh)" in text
    assert "EVs finished by departure" in text
    data = json.loads(out.read_text())
    assert set(data) == {"hubgate", "naive"}
    assert data["hubgate"]["simulated_s"] == data["naive"]["simulated_s"] == 60
