"""Scenario files: every problem reported with its file, line and field path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from hubgate.config import ConfigError
from hubgate.sim import load_scenario


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    return [str(p) for p in info.value.problems]


def test_valid_scenario_loads(write_scenario: Callable[..., Path]) -> None:
    loaded = load_scenario(write_scenario())
    assert loaded.scenario.scenario.seed == 3
    assert loaded.site.site.name == "sim test"
    assert loaded.scenario.base_load[0].amps == (10.0, 20.0, 30.0)


def test_unknown_key_is_located_with_a_hint(
    write_scenario: Callable[..., Path], scenario_text: str
) -> None:
    path = write_scenario(scenario=scenario_text.replace("seed = 3", "sead = 3"))
    [problem] = problems(path)
    assert problem.startswith(f"{path}:5: scenario.sead: unknown key 'sead'; did you mean 'seed'?")


def test_every_field_problem_at_once(
    write_scenario: Callable[..., Path], scenario_text: str
) -> None:
    extra = """
[[events]]
at_s = 10
kind = "grid-limit"

[[events]]
at_s = 20
kind = "meter-dies"
meter = "meter-grid"
percent = 50

[[events]]
at_s = 30
kind = "eclipse"
"""
    text = scenario_text.replace("phases = 3", "phases = 2").replace(
        "reaction_s = [3, 5]", "reaction_s = [5, 3]"
    )
    found = problems(write_scenario(extra, scenario=text))
    path = found[0].split(":")[0]
    assert found == [
        f"{path}:14: ev_mix[0].phases: Input should be 1 or 3, got 2",
        f"{path}:15: ev_mix[0].reaction_s: give [low, high] with low <= high, got [5.0, 3.0]",
        f"{path}:26: events[0]: a 'grid-limit' event needs 'percent'",
        f"{path}:30: events[1]: 'percent' does not apply to a 'meter-dies' event (its keys: meter)",
        f"{path}:38: events[2].kind: Input should be 'meter-dies', 'charger-offline', "
        "'csms-down', 'grid-limit', 'feed-in-limit' or 'cloud', got 'eclipse'",
    ]


def test_references_into_the_site_are_checked(
    write_scenario: Callable[..., Path], scenario_text: str
) -> None:
    extra = """
[[events]]
at_s = 10
kind = "meter-dies"
meter = "meter-nowhere"

[[events]]
at_s = 900
kind = "charger-offline"
charger = "cp-rot"
"""
    text = scenario_text.replace('node = "board"', 'node = "bored"')
    found = problems(write_scenario(extra, scenario=text))
    path = found[0].split(":")[0]
    assert found == [
        f"{path}:18: base_load[0].node: node 'bored' is not in the site; valid: grid, board, sub",
        f"{path}:29: events[0].meter: meter 'meter-nowhere' is not in the site; valid: meter-grid",
        f"{path}:32: events[1].at_s: at 900 s is not before the end (duration_s = 600)",
    ]


def test_a_missing_site_file_is_located(
    write_scenario: Callable[..., Path], scenario_text: str
) -> None:
    path = write_scenario(scenario=scenario_text.replace('"site.toml"', '"nowhere.toml"'))
    [problem] = problems(path)
    assert problem.startswith(f"{path}:3: scenario.site: site file ")
    assert problem.endswith("nowhere.toml' does not exist")


def test_problems_in_the_site_file_name_the_site_file(
    write_scenario: Callable[..., Path], tmp_path: Path, site_text: str
) -> None:
    path = write_scenario(site=site_text.replace("peak_kw = 20", "peak_kw = -1"))
    [problem] = problems(path)
    assert problem.startswith(f"{tmp_path / 'site.toml'}:")
    assert "pv[0].peak_kw" in problem


def test_events_need_what_they_act_on(write_scenario: Callable[..., Path], site_text: str) -> None:
    site = site_text.split("[[pv]]")[0]
    extra = '\n[[events]]\nat_s = 10\nkind = "cloud"\ndepth_percent = 50\n'
    found = problems(write_scenario(extra, site=site))
    assert [p.split(": ", 1)[1] for p in found] == [
        "events[0].kind: the site has no PV for a cloud to cover"
    ]


def test_bad_toml_is_reported(write_scenario: Callable[..., Path]) -> None:
    [problem] = problems(write_scenario("[[events]\n"))
    assert "not valid TOML" in problem
