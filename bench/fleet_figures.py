"""The fleet figures of docs/performance.md: a fleet scenario under hubgate's loop in-process
(as `hubgate sim --speed max`), told each vehicle's need as it plugs in, and not told (the
plain fair share), with the LP oracle's least shortfall (`tests/support/fleet_oracle.py`).

    python bench/fleet_figures.py examples/scenarios/bus-depot-overnight.toml [--prices]

One line per run: vehicles finished by departure, shortfall (worst vehicle), 15-minute peak,
import, cost, violations and the run's CPU time. Without `--prices` the scenario's prices
are left out (the sessions share by deadline and fairness alone).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import trio
from trio.testing import MockClock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hubgate.sim import Simulation, load_scenario
from hubgate.sim.inprocess import run_hubgate
from tests.support.fleet_oracle import lp_shortfall_kwh


def run(path: Path, *, told: bool, prices: bool) -> str:
    """One run's figures as a line."""
    loaded = load_scenario(path)
    scenario = loaded.scenario
    assert scenario.fleet is not None, f"{path}: no [fleet]"
    fleet = scenario.fleet.model_copy(update={"told": told})
    update = {"fleet": fleet} | ({} if prices else {"prices": None})
    scenario = scenario.model_copy(update=update)
    sim = Simulation(dataclasses.replace(loaded, scenario=scenario))
    began = time.process_time()
    trio.run(run_hubgate, sim, scenario.scenario.duration_s, clock=MockClock(autojump_threshold=0))
    cpu_s = time.process_time() - began
    summary = sim.fleet_summary()
    assert summary is not None
    cost = "" if summary.cost is None else f", cost {summary.cost:.2f}"
    safety = sim.recorder.summary()
    return (
        f"{'told' if told else 'fair share'}: {summary.finished} of {summary.vehicles} finished, "
        f"shortfall {summary.shortfall_kwh:.1f} kWh (worst {summary.worst_shortfall_kwh:.1f}) "
        f"of {summary.needed_kwh:.1f}, peak {safety.demand_peak_kw:.1f} kW, "
        f"import {summary.import_kwh:.1f} kWh{cost}, violations {len(safety.violations)}, "
        f"CPU {cpu_s:.0f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", type=Path)
    parser.add_argument("--prices", action="store_true", help="keep the scenario's prices")
    args = parser.parse_args()
    print(
        f"LP oracle: shortfall {lp_shortfall_kwh(Simulation(load_scenario(args.scenario))):.1f} kWh"
    )
    for told in (True, False):
        print(run(args.scenario, told=told, prices=args.prices), flush=True)


if __name__ == "__main__":
    main()
