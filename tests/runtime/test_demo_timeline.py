"""A short demo still shows its scenario's events: their timeline scaled into the demo."""

from __future__ import annotations

from hubgate.cli.examples_cmd import example_path
from hubgate.runtime.demo import fitted, scenario_steps
from hubgate.sim.scenario_loader import load_scenario


def test_a_demo_too_short_for_the_first_event_sees_it_at_half_its_length() -> None:
    loaded = load_scenario(example_path("grid-limit-step", "scenarios"))  # 30 % at 60 s, 600 s
    short, factor = fitted(loaded, 15.0)
    assert factor == 0.125
    assert scenario_steps(short.scenario.events) == [
        (7.5, "the grid operator limits the connection to 30 % for 75 s"),
        (82.5, "the grid operator's limit is lifted (100 %)"),
    ]
    assert short.scenario.scenario == loaded.scenario.scenario  # only the events move
    assert short.site == loaded.site


def test_a_demo_long_enough_keeps_the_scenario_as_it_is() -> None:
    loaded = load_scenario(example_path("grid-limit-step", "scenarios"))
    assert fitted(loaded, 120.0) == (loaded, 1.0)
    assert fitted(loaded, 300.0) == (loaded, 1.0)
