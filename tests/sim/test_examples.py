"""Every example scenario runs, shortened, through the closed loop without a violation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hubgate.cli import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK, main
from hubgate.sim import ClosedLoop, NaiveEqualShareController, Simulation, load_scenario, run_fast

SCENARIOS = sorted((Path(__file__).resolve().parents[2] / "examples" / "scenarios").glob("*.toml"))


def test_every_event_kind_has_an_example() -> None:
    kinds = {e.kind for path in SCENARIOS for e in load_scenario(path).scenario.events}
    assert kinds == {"meter-dies", "charger-offline", "csms-down", "grid-limit", "cloud"}


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_example_runs_shortened_without_violation(path: Path) -> None:
    loaded = load_scenario(path)
    sim = Simulation(loaded)
    first_event = min((e.at_s for e in loaded.scenario.events), default=0.0)
    duration = min(loaded.scenario.scenario.duration_s, first_event + 120.0, 600.0)
    run_fast(ClosedLoop(sim, NaiveEqualShareController(sim)), duration)
    summary = sim.recorder.summary()
    assert summary.simulated_s == pytest.approx(duration)
    assert summary.energy_delivered_kwh > 0
    assert summary.violations == ()


def event_effect(name: str) -> tuple[Simulation, Simulation]:
    """The named example run 150 s, and the same run without its events."""
    loaded = load_scenario(SCENARIOS[[p.stem for p in SCENARIOS].index(name)])
    quiet = type(loaded)(
        loaded.scenario.model_copy(update={"events": ()}), loaded.site, loaded.path
    )
    runs = []
    for variant in (loaded, quiet):
        sim = Simulation(variant)
        run_fast(ClosedLoop(sim, NaiveEqualShareController(sim)), 150)
        runs.append(sim)
    return runs[0], runs[1]


def test_grid_limit_step_brings_the_grid_under_30_percent() -> None:
    stepped, quiet = event_effect("grid-limit-step")
    assert stepped.grid_signal.percent == 30.0
    assert max(stepped.node_current()) <= 0.3 * 1600
    assert max(quiet.node_current()) > 0.3 * 1600


def test_dead_meter_shrinks_the_budget() -> None:
    dead, quiet = event_effect("meter-dies")
    assert dead.meters["meter-grid"].currents_a is None
    assert max(dead.node_current()) < 0.5 * 1600
    assert max(quiet.node_current()) > 0.5 * 1600


def test_offline_charger_keeps_its_last_limit_and_others_make_room() -> None:
    offline, _ = event_effect("charger-offline")
    charger = offline.chargers["cp-001"]
    assert not charger.online
    assert charger.lease_until < offline.now  # written last before it went away
    assert all(charger.offered(slot, offline.now) == 6.0 for slot in charger.slots)


def test_csms_down_is_exposed() -> None:
    down, _ = event_effect("csms-down")
    assert not down.csms.online


def test_cloud_raises_the_import() -> None:
    cloudy, quiet = event_effect("pv-cloud")
    assert cloudy.pv[0].power_kw < 0.5 * quiet.pv[0].power_kw
    assert sum(cloudy.node_current()) > sum(quiet.node_current())


def test_cli_runs_a_scenario_and_writes_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "summary.json"
    path = str(SCENARIOS[0])
    args = ["sim", path, "--duration", "90", "--speed", "max", "--json", str(out)]
    code = main([*args, "--controller", "naive"])
    assert code == EXIT_OK
    text = capsys.readouterr().out
    assert "naive equal-share controller" in text
    assert "limit violations: 0" in text
    assert json.loads(out.read_text())["simulated_s"] == 90


def test_cli_check_fails_on_a_violation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = (SCENARIOS[0].parent.parent / "sites" / "depot-200.toml").read_text()
    # A feeder limit below what its base load alone draws cannot be kept by anyone.
    (tmp_path / "site.toml").write_text(
        site.replace("phase_current_limit_a = 400", "phase_current_limit_a = 10", 1)
    )
    scenario = SCENARIOS[0].read_text().replace("../sites/depot-200.toml", "site.toml")
    scenario += '\n[[base_load]]\nnode = "feeder-1"\namps = 20\n'
    (tmp_path / "scenario.toml").write_text(scenario)
    code = main(
        ["sim", str(tmp_path / "scenario.toml"), "--duration", "30", "--speed", "max", "--check"]
    )
    assert code == EXIT_FAILURE
    assert "VIOLATION feeder-1" in capsys.readouterr().out


def test_cli_bad_scenario_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('[scenario]\nname = "x"\nsite = "none.toml"\nspeed = 3\n')
    assert main(["sim", str(path)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert f"{path}:4: scenario.speed: unknown key 'speed'" in err
    assert "ev_mix: required key 'ev_mix' is missing" in err


@pytest.mark.parametrize("speed", ["0", "-2", "fast"])
def test_cli_rejects_a_bad_speed(speed: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["sim", str(SCENARIOS[0]), "--speed", speed])
    assert info.value.code == 2
    assert "give a number above 0 or 'max'" in capsys.readouterr().err


def test_cli_paced_run_prints_status_lines(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["sim", str(SCENARIOS[0]), "--duration", "120", "--speed", "4000"]
    assert main([*args, "--status-every", "60"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "at 4000x speed" in out
    status = [line.split()[1] for line in out.splitlines() if line.startswith("t=")]
    assert status == ["60", "120"]
