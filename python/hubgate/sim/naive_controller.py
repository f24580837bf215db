"""A NAIVE built-in controller for standalone runs and tests: equal shares per node.

It stands in for a real gateway so that `hubgate sim` runs a closed loop
in-process. It sees only what a gateway would: meter readings, what online
chargers report and the grid-operator signal; it writes limits to chargers.
Every cycle it

1. budgets each node and phase: the limit in force (its phase limit, and its power
   limit as an even current per phase; at the connection also the grid operator's limit
   and the demand target, kept at every moment) less a headroom, less the
   non-EV load (meter reading less the reported EV draws); with the meter dead,
   the configured degraded share of the limit; with no meter, the whole limit;
   connectors of offline chargers are reserved at what they may draw;
2. admits EVs in connector order while 6 A more fits every node above them;
3. gives each admitted EV the smallest equal share of the nodes above it.

It has no priorities, rotation, redistribution of unused shares or
transition-safe ordering: the real allocator replaces it.
"""

from __future__ import annotations

from hubgate.sim.devices import MeterState
from hubgate.sim.engine import Simulation

HEADROOM_PERCENT = 3.0
"""Kept free below each node's limit for base-load wander between cycles."""


class NaiveEqualShareController:
    """Equal share per connector under each node; writes limits every `period_s`."""

    def __init__(self, sim: Simulation) -> None:
        tree = sim.tree
        self.period_s = sim.site.control.cycle_s
        self._margin_a = sim.site.grid.safety_margin_a
        self._degraded = sim.site.control.degraded_budget_percent / 100.0
        target_w = sim.demand_rule().target_w
        self._demand_w = float("inf") if target_w is None else target_w
        """The demand target, kept as a cap on the import at every moment."""
        self._ancestors = [tree.ancestors(c.node) for c in tree.connectors]
        self._meters: dict[int, MeterState] = {}
        for meter in sim.meters.values():
            self._meters.setdefault(meter.node, meter)

    def _budgets(self, sim: Simulation, used: list[float], reserved: list[float]) -> list[float]:
        budgets = [float("inf")] * len(used)
        keep = 1.0 - HEADROOM_PERCENT / 100.0
        per_phase_w = 3 * sim.tree.voltage_v
        powers_w = list(sim.tree.power_limits_w)
        powers_w[0] = min(powers_w[0], sim.operator_limit_w(), self._demand_w)
        for node, limit in enumerate(sim.limits_in_force()):
            power_a = powers_w[node] / per_phase_w
            if limit is None and power_a == float("inf"):
                continue
            meter = self._meters.get(node)
            for phase in range(3):
                k = 3 * node + phase
                phase_limit = min(float("inf") if limit is None else limit[phase], power_a)
                cap = phase_limit * keep - (self._margin_a if node == 0 else 0.0)
                if meter is None:
                    budget = cap
                elif meter.currents_a is None:
                    budget = cap * self._degraded
                else:
                    budget = cap - max(meter.currents_a[phase] - used[k], 0.0)
                budgets[k] = budget - reserved[k]
        return budgets

    def update(self, sim: Simulation) -> None:
        """Read the site, compute every connector's limit and write them to the chargers."""
        tree, now = sim.tree, sim.now
        size = 3 * len(tree.node_ids)
        used, reserved = [0.0] * size, [0.0] * size
        active: list[tuple[int, tuple[int, ...]]] = []
        for slot, wiring in enumerate(tree.connectors):
            charger = sim.slot_charger[slot]
            ev = sim.evs[slot]
            if not charger.online:
                assumed = max(charger.setpoints.get(slot, 0.0), charger.failsafe_a)
                for node in self._ancestors[slot]:
                    for phase in wiring.grid_phases:
                        reserved[3 * node + phase] += assumed
            elif ev is not None and charger.in_session(slot):  # else it shows unavailable
                phases = wiring.phases_for(ev.phases)
                for node in self._ancestors[slot]:
                    for phase in phases:
                        used[3 * node + phase] += ev.draw_a
                active.append((slot, phases))
        budgets = self._budgets(sim, used, reserved)

        counts = [0] * size
        admitted: list[tuple[int, tuple[int, ...]]] = []
        for slot, phases in active:
            floor = tree.connectors[slot].min_current_a
            keys = [3 * node + p for node in self._ancestors[slot] for p in phases]
            if all((counts[k] + 1) * floor <= budgets[k] for k in keys):
                for k in keys:
                    counts[k] += 1
                admitted.append((slot, phases))

        limits = [0.0] * len(tree.connectors)
        for slot, phases in admitted:
            share = min(
                budgets[3 * node + p] / counts[3 * node + p]
                for node in self._ancestors[slot]
                for p in phases
            )
            limits[slot] = min(share, tree.connectors[slot].max_current_a)
        for charger in sim.chargers.values():
            charger.write_limits({slot: limits[slot] for slot in charger.slots}, now)
