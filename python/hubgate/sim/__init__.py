"""The site simulator's protocol-independent core: physics, EVs, devices, time, recorder.

`load_scenario` reads a scenario and its site; `Simulation` steps the site;
`ClosedLoop` with `run_fast` or `run_paced` drives it, optionally with the
built-in `NaiveEqualShareController`; `Simulation.recorder` checks safety.
"""

from hubgate.sim.engine import Simulation
from hubgate.sim.naive_controller import NaiveEqualShareController
from hubgate.sim.recorder import SafetyRecorder, Summary, Violation
from hubgate.sim.runner import ClosedLoop, run_fast, run_paced
from hubgate.sim.scenario import Scenario
from hubgate.sim.scenario_loader import LoadedScenario, load_scenario

__all__ = [
    "ClosedLoop",
    "LoadedScenario",
    "NaiveEqualShareController",
    "SafetyRecorder",
    "Scenario",
    "Simulation",
    "Summary",
    "Violation",
    "load_scenario",
    "run_fast",
    "run_paced",
]
