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
from itertools import pairwise

from hubgate.sim.engine import Simulation

HOUR_S = 3600.0


def lp_shortfall_kwh(sim: Simulation) -> float:
    """The least total shortfall (kWh) over the fleet of `sim` (built, not yet run)."""
    import numpy as np
    from scipy.optimize import linprog
    from scipy.sparse import lil_matrix

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
    limits += [v.need_kwh * 1000 for v in vehicles]
    result = linprog(
        -np.ones(len(variables)),
        A_ub=rows.tocsr(),
        b_ub=np.array(limits),
        bounds=[(0.0, most) for _, _, most in variables],
        method="highs",
    )
    assert result.status == 0, result.message
    return sum(v.need_kwh for v in vehicles) + float(result.fun) / 1000
