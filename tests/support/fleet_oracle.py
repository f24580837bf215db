"""The quality oracle for a fleet scenario: the least total shortfall any schedule achieves.

A linear program (`scipy.optimize.linprog`, HiGHS) over the scenario's 15-minute metering
intervals (aligned to the clock): each vehicle may draw up to its maximum power while it is
plugged in (arrival to departure, from the timetable), each interval's energy stays within
what the connection and the demand target leave after the base load, and no vehicle gets
more than its need. It knows every arrival in advance and ignores the 6 A minimum and the
EVs' reaction, so no controller can beat it; a controller that matches it has wasted nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from scipy.sparse import lil_matrix

from hubgate.sim.engine import Simulation

HOUR_S = 3600.0


@dataclass(frozen=True)
class _Program:
    """The fleet's energy per vehicle and interval: variables (vehicle, interval, most Wh),
    one row per interval (its energy) then one per vehicle (its need), their limits."""

    variables: list[tuple[int, int, float]]
    rows: lil_matrix
    limits: list[float]
    needs_wh: list[float]


def lp_shortfall_kwh(sim: Simulation) -> float:
    """The least total shortfall (kWh) over the fleet of `sim` (built, not yet run)."""
    from scipy.optimize import linprog

    program = _program(sim)
    result = linprog(
        -np.ones(len(program.variables)),
        A_ub=program.rows.tocsr(),
        b_ub=np.array(program.limits),
        bounds=[(0.0, most) for _, _, most in program.variables],
        method="highs",
    )
    assert result.status == 0, result.message
    return (sum(program.needs_wh) + float(result.fun)) / 1000


def most_finished(sim: Simulation, floor_share: float) -> int:
    """The most vehicles of `sim`'s fleet any schedule finishes while every vehicle gets at
    least `floor_share` of its need (a mixed-integer program: one binary per vehicle)."""
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import hstack

    program = _program(sim)
    vehicles, columns = len(program.needs_wh), len(program.variables)
    rows = program.rows.tocsr()
    intervals = rows.shape[0] - vehicles
    energy, got = rows[:intervals], rows[intervals:]
    needs = np.array(program.needs_wh)
    none = lil_matrix((intervals, vehicles))
    finished = lil_matrix((vehicles, vehicles))
    finished.setdiag(-needs)
    result = milp(
        np.concatenate([np.zeros(columns), -np.ones(vehicles)]),
        constraints=[
            LinearConstraint(hstack([energy, none]), -np.inf, program.limits[:intervals]),
            LinearConstraint(hstack([got, finished]), 0.0, np.inf),  # its need if finished
            LinearConstraint(
                hstack([got, lil_matrix((vehicles, vehicles))]), needs * floor_share, needs
            ),
        ],
        integrality=np.concatenate([np.zeros(columns), np.ones(vehicles)]),
        bounds=Bounds(
            np.zeros(columns + vehicles),
            np.array([most for _, _, most in program.variables] + [1.0] * vehicles),
        ),
    )
    assert result.status == 0, result.message
    return round(-float(result.fun))


def _program(sim: Simulation) -> _Program:
    scenario, site = sim.scenario, sim.site
    voltage = site.grid.voltage_v
    duration = scenario.scenario.duration_s
    demand = sim.demand_rule()
    interval_s, offset = demand.interval_s, demand.start_s  # into the first interval
    starts = [0.0]
    while starts[-1] < duration:
        starts.append(starts[-1] + interval_s - (offset if len(starts) == 1 else 0.0))
    starts[-1] = min(starts[-1], duration)
    slots = list(pairwise(starts))
    base_w = voltage * sum(sum(load.amps) for load in scenario.base_load if load.node == "grid")
    connection_w = min(3 * voltage * min(site.grid.usable_phase_a), site.grid.usable_power_w)
    target_w = math.inf if demand.target_w is None else demand.target_w
    connector_a = {(c.id, k.id): k.max_current_a for c in site.chargers for k in c.connectors}
    max_connector_a = max(connector_a.values())
    vehicles = [v for v in sim.vehicles if v.arrives_at < duration]
    variables: list[tuple[int, int, float]] = []  # (vehicle, slot, most Wh)
    for i, v in enumerate(vehicles):
        watts = min(v.kind.max_current_a, max_connector_a) * v.kind.phases * voltage
        for k, (a, b) in enumerate(slots):
            overlap = min(b, v.departs_at) - max(a, v.arrives_at)
            if overlap > 0:
                variables.append((i, k, watts * overlap / HOUR_S))
    rows = lil_matrix((len(slots) + len(vehicles), len(variables)))
    for column, (i, k, _) in enumerate(variables):
        rows[k, column] = 1.0
        rows[len(slots) + i, column] = 1.0
    # The demand target holds for each clock-aligned interval's energy: a partial interval at
    # the start or the end of the run may take a whole interval's worth in its part.
    limits = [
        max(min(connection_w * (b - a), target_w * interval_s) - base_w * (b - a), 0.0) / HOUR_S
        for a, b in slots
    ]
    needs = [v.need_kwh * 1000 for v in vehicles]
    return _Program(variables, rows, [*limits, *needs], needs)
