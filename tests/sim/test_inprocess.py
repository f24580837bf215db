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
from hubgate.cli.sim_cmd import comparison, verdict
from hubgate.control.loop import ControlLoop
from hubgate.profiles.model import IecState
from hubgate.sim import ClosedLoop, NaiveEqualShareController, Simulation, load_scenario, run_fast
from hubgate.sim.inprocess import control_loop, run_hubgate, site_devices
from hubgate.sim.recorder import Summary, Violation
from tests.support.toml_tables import dc_charger, dc_holding

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
    if sim.vehicles:  # a fleet: from its first arrival on
        duration = min(loaded.scenario.scenario.duration_s, sim.vehicles[0].arrives_at // 1 + 120)
    loop = run(sim, duration)
    summary = sim.recorder.summary()
    assert summary.simulated_s == pytest.approx(duration)
    assert summary.energy_delivered_kwh > 0
    assert summary.violations == ()
    cycles = duration / loaded.site.control.cycle_s
    assert len(loop.decisions) >= cycles - 2  # the loop ran every cycle


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
    assert text.splitlines()[-1].startswith("verdict: hubgate")
    data = json.loads(out.read_text())
    assert set(data) == {"hubgate", "naive"}
    assert data["hubgate"]["simulated_s"] == data["naive"]["simulated_s"] == 60


def summary(kwh: float, *, peak_kw: float = 50.0, violations: int = 0) -> Summary:
    broken = Violation("grid", "L1", 0.0, 0.0, 20.0, 13.0, 5.0)
    return Summary(
        600.0, 7.0, kwh, (), (broken,) * violations, demand_peak_kw=peak_kw, demand_target_kw=60
    )


def test_the_verdict_judges_both_controllers_by_the_same_rules() -> None:
    """Energy is ahead only at the same safety: a naive run that broke the demand target or a
    limit is not ahead of hubgate's, whatever it delivered; hubgate breaking one is said."""
    assert verdict(summary(10.0), summary(9.0)).startswith("verdict: hubgate ahead by +1.00 kWh")
    assert verdict(summary(9.0), summary(10.0)).startswith("verdict: hubgate BEHIND by -1.00 kWh")
    over = verdict(summary(9.0), summary(10.0, peak_kw=70.0))
    assert "not at the same safety (a demand peak of 70.0 kW over the 60 kW target)" in over
    assert "hubgate ahead" in over
    assert "2 limit violations (26 s beyond)" in verdict(summary(9.0), summary(10.0, violations=2))
    assert verdict(summary(11.0, violations=1), summary(10.0)).startswith(
        "verdict: hubgate broke a rule: 1 limit violations"
    )
    table = comparison({"hubgate": summary(10.0), "naive": summary(9.0, peak_kw=70.0)})
    assert "demand peak kW (target 60)" in table
    assert "70.0 over" in table


DC_CHARGER = "\n" + dc_charger("dc-1", "grid", dc_holding(50))


def test_an_idle_dc_station_under_its_minimum_starts_no_session(
    write_scenario: Callable[..., Path], site_text: str, scenario_text: str
) -> None:
    """In-process as on the wire (`dc-min-power`, evcc-io/evcc#28493): an EV at an idle DC
    station offered less than its minimum waits, the station unavailable (state F); offered
    its minimum, the session starts. hubgate holds an idle DC connector at its minimum, so
    its EVs start; the naive controller sees an unavailable station and never starts them."""
    scenario = scenario_text.replace("initial_occupancy = 1.0", "initial_occupancy = 0.0")
    extra = '\n[personalities]\n"dc-1" = "dc-min-power"\n'
    path = write_scenario(extra, scenario=scenario, site=site_text + DC_CHARGER)
    sim = Simulation(load_scenario(path))
    slot = next(i for i, w in enumerate(sim.tree.connectors) if w.charger == "dc-1")
    charger, minimum = sim.slot_charger[slot], sim.slot_charger[slot].dc_min_a[slot]
    sim.plug_in(slot, 0.0)
    charger.write_limits({slot: minimum - 0.5}, 0.0)
    for _ in range(10):
        sim.step()
    assert not charger.in_session(slot)
    ev = sim.evs[slot]
    assert ev is not None
    assert ev.draw_a == 0.0
    adapter = site_devices(sim).chargers[("dc-1", 1)]
    assert trio.run(adapter.read).state is IecState.F
    charger.write_limits({slot: minimum}, sim.now)
    sim.step()
    assert charger.in_session(slot)

    runs = {}
    for who in ("hubgate", "naive"):
        sim = Simulation(load_scenario(path))
        sim.plug_in(slot, 0.0)
        if who == "hubgate":
            run(sim, 60)
        else:
            run_fast(ClosedLoop(sim, NaiveEqualShareController(sim)), 60)
        runs[who] = sim
    assert runs["hubgate"].slot_charger[slot].in_session(slot)
    assert runs["hubgate"].recorder.summary().energy_delivered_kwh > 0
    assert not runs["naive"].slot_charger[slot].in_session(slot)
    assert runs["naive"].recorder.summary().energy_delivered_kwh == 0


DC_ROTATE_S = 20.0
DC_TRIO = "".join("\n" + dc_charger(f"dc-{n}", "sub", dc_holding(50)) for n in (1, 2, 3))


def test_an_ev_at_an_idle_dc_station_that_yielded_its_hold_starts_at_its_turn(
    write_scenario: Callable[..., Path], site_text: str, scenario_text: str
) -> None:
    """Two AC EVs want more than the 63 A feeder gives them: of its three idle DC stations
    (`dc-min-power`: offered less than their minimum, Unavailable, no session) one at a time
    keeps its minimum, in turns of `hold_rotate_s` (control/dc_holds.py). An EV arriving at
    the third waits for its turn, then starts: within (3 - 1) x `hold_rotate_s`."""
    scenario = scenario_text.replace("initial_occupancy = 1.0", "initial_occupancy = 0.0")
    extra = "\n[personalities]\n" + "".join(f'"dc-{n}" = "dc-min-power"\n' for n in (1, 2, 3))
    site = f"{site_text}{DC_TRIO}\n[control]\nhold_rotate_s = {DC_ROTATE_S}\n"
    sim = Simulation(load_scenario(write_scenario(extra, scenario=scenario, site=site)))
    slots = {w.charger: i for i, w in enumerate(sim.tree.connectors)}
    for slot, w in enumerate(sim.tree.connectors):
        if w.charger == "cp-rot":
            sim.plug_in(slot, 0.0)
    arrives_s, dc3 = 10.0, slots["dc-3"]
    started: list[float] = []

    def step(sim: Simulation) -> None:
        if sim.now == arrives_s:
            sim.plug_in(dc3, sim.now)
        if not started and sim.slot_charger[dc3].in_session(dc3):
            started.append(sim.now)

    trio.run(
        lambda: run_hubgate(sim, 80, step),
        clock=trio.testing.MockClock(autojump_threshold=0),
    )
    assert started, "the EV at dc-3 never started"
    # dc-1's turn, then dc-2's: then dc-3's, a cycle after dc-2's hold was seen taken back
    assert 2 * DC_ROTATE_S < started[0] <= arrives_s + 2 * DC_ROTATE_S + 2
    assert sim.recorder.summary().violations == ()
