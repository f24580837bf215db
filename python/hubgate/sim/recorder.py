"""The safety recorder: true current against the limit in force, per node and phase, each
node's power against its power limit (the connection's: its own or the grid operator's,
whichever is lower; phase "P", as the average current per phase it stands for), and the
connection's feed-in against the limit on export (phase "E", likewise).

Being above a limit is tolerated for `reaction_s` after its cause: the moment the
limit was lowered, when the excursion began within `reaction_s` of that, else the
moment the excursion began (a load step, a new EV). Every second beyond that is a
violation. The recorder keeps the time series and sums up the run, with the highest
average import over the site's demand intervals (`[demand]`) against its target.
"""

from __future__ import annotations

import json
import math
from array import array
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from hubgate.sim.electrical import PhaseLimit

EPSILON_A = 1e-6
PHASES = ("L1", "L2", "L3")
POWER = "P"
"""The phase label of the connection's power limit (in A: its average per phase)."""
EXPORT = "E"
"""The phase label of the connection's feed-in limit (in A: its average per phase)."""
DEMAND_TOLERANCE = 0.01
"""A demand interval averaging at most this fraction above the target still keeps it: a
controller reacts to the interval's import a cycle or two late (measured: hubgate's first
interval of the small depots, as the vehicles arrive, ends 0.2-0.5 % over)."""


@dataclass(frozen=True)
class DemandRule:
    """The site's demand metering: clock-aligned intervals and the target on their average."""

    interval_s: float
    target_w: float | None
    start_s: float = 0.0
    """Seconds since the last interval boundary at simulated time 0 (the intervals' phase)."""


@dataclass(frozen=True)
class Violation:
    """A stretch of time above a limit that lasted beyond the tolerated reaction."""

    node: str
    phase: str
    cause_s: float
    start_s: float
    end_s: float
    seconds_beyond: float
    """Time above the limit later than `cause_s + reaction_s`."""
    worst_excess_a: float


@dataclass(frozen=True)
class NodePeak:
    """The highest current of a node over the run."""

    node: str
    phase: str
    amps: float
    at_s: float
    seconds_above_limit: float
    """All time above a limit on any phase, tolerated or not."""


@dataclass(frozen=True)
class Summary:
    """The end-of-run report."""

    simulated_s: float
    reaction_s: float
    energy_delivered_kwh: float
    peaks: tuple[NodePeak, ...]
    violations: tuple[Violation, ...]
    evs_left: int = 0
    """EVs that left during the run (their departure time came)."""
    evs_finished: int = 0
    """Of those, the ones at their target state of charge when they left."""
    demand_peak_kw: float = 0.0
    """The highest average import over one demand interval (clock-aligned)."""
    demand_target_kw: float | None = None
    """The site's demand target (None: none)."""

    @property
    def demand_kept(self) -> bool:
        """Whether every demand interval stayed under the target (`DEMAND_TOLERANCE`)."""
        target = self.demand_target_kw
        return target is None or self.demand_peak_kw <= target * (1 + DEMAND_TOLERANCE)

    @property
    def violation_seconds(self) -> float:
        """Total time beyond the tolerated reaction, over every node and phase."""
        return sum(v.seconds_beyond for v in self.violations)

    def to_json(self) -> str:
        """The summary as a JSON document."""
        data = asdict(self)
        data["violation_seconds"] = self.violation_seconds
        return json.dumps(data, indent=2)

    def to_text(self) -> str:
        """The summary for a person."""
        lines = [
            f"simulated {self.simulated_s:g} s; energy delivered {self.energy_delivered_kwh:.2f} kWh",
            f"limit violations: {len(self.violations)} "
            f"({self.violation_seconds:g} s beyond the {self.reaction_s:g} s reaction time)",
            f"EVs finished by departure: {self.evs_finished} of {self.evs_left} that left",
            f"demand peak: {self.demand_text()}",
            f"{'node':<15} {'peak (phase, at)':<26}   time above limit",
        ]
        lines += [
            f"{p.node:<15} {p.amps:8.1f} A ({p.phase}, {p.at_s:>7g} s)   {p.seconds_above_limit:g} s"
            for p in self.peaks
        ]
        lines += [
            f"VIOLATION {v.node} {v.phase}: above limit {v.start_s:g}-{v.end_s:g} s, cause at "
            f"{v.cause_s:g} s, {v.seconds_beyond:g} s too long, worst +{v.worst_excess_a:.1f} A"
            for v in self.violations
        ]
        return "\n".join(lines)

    def demand_text(self) -> str:
        """The demand peak and, with a target, how it compares."""
        peak, target = self.demand_peak_kw, self.demand_target_kw
        if target is None:
            return f"{peak:.1f} kW"
        return f"{peak:.1f} kW of {target:g} kW target" + ("" if self.demand_kept else " (over)")


class SafetyRecorder:
    """Fed once per step with every node's current and limit (flat, `3 * node + phase`);
    `power_limits_w`: each node's configured power limit (W, inf or left out: none)."""

    def __init__(
        self,
        node_ids: Sequence[str],
        reaction_s: float,
        voltage_v: float = 230.0,
        *,
        power_limits_w: Sequence[float] = (),
        demand: DemandRule | None = None,
    ) -> None:
        self.node_ids = tuple(node_ids)
        self.reaction_s = reaction_s
        self.voltage_v = voltage_v
        self.power_limits_w = tuple(power_limits_w) + (math.inf,) * (
            len(node_ids) - len(power_limits_w)
        )
        self.demand = demand or DemandRule(900.0, None)
        self._intervals: dict[int, float] = {}
        """Import per demand interval (J), by the interval's number."""
        size = 3 * len(node_ids)
        self.currents = [array("d") for _ in range(size)]
        """True current per node and phase, one value per step."""
        self.limits = [array("d") for _ in range(size)]
        """Limit in force per node and phase, one value per step (inf: none)."""
        self.grid_power_w = array("d")
        """The connection's power (W), one value per step."""
        self.grid_power_limit_w = array("d")
        """The limit on it in force (W; inf: none), one value per step."""
        self.export_limit_w = array("d")
        """The limit on the connection's feed-in (W; inf: none), one value per step."""
        self._power = size  # the streak of node k's power: _power + k
        self._export = size + len(node_ids)
        size += len(node_ids) + 1  # the streaks of each node's power and the feed-in
        self.times = array("d")
        self.energy_kwh = 0.0
        self._end = 0.0
        self._last_limit = [float("-inf")] * size  # the first limit is no drop
        self._lowered_at = [float("-inf")] * size
        self._streak_start: list[float | None] = [None] * size
        self._streak_cause = [0.0] * size
        self._streak_beyond = [0.0] * size
        self._streak_worst = [0.0] * size
        self._above_s = [0.0] * len(node_ids)
        self._peak = [(0.0, 0, 0.0)] * len(node_ids)
        self._violations: list[Violation] = []
        self._left = self._finished = 0

    def departed(self, *, finished: bool) -> None:
        """An EV left; `finished` when it had reached its target state of charge."""
        self._left += 1
        self._finished += finished

    def record(
        self,
        now: float,
        dt: float,
        currents: Sequence[float],
        limits: Sequence[PhaseLimit],
        energy_kwh: float,
        grid_power_limit_w: float = float("inf"),
        export_limit_w: float = float("inf"),
    ) -> None:
        """The state during the step [now, now + dt); `grid_power_limit_w`: the grid
        operator's limit on the connection's power (the lower of it and the connection's own
        power limit is in force)."""
        self.times.append(now)
        self.energy_kwh += energy_kwh
        self._end = now + dt
        for node, limit in enumerate(limits):
            above = False
            for phase in range(3):
                k = 3 * node + phase
                amps = currents[k]
                magnitude = abs(amps)
                self.currents[k].append(amps)
                if magnitude > self._peak[node][0]:
                    self._peak[node] = (magnitude, phase, now)
                cap = float("inf") if limit is None else limit[phase]
                self.limits[k].append(cap)
                above |= self._check(k, now, dt, magnitude, cap)
            at = 3 * node
            watts = self.voltage_v * (currents[at] + currents[at + 1] + currents[at + 2])
            power_limit_w = self.power_limits_w[node]
            per_phase = 3 * self.voltage_v
            if node == 0:
                power_limit_w = min(power_limit_w, grid_power_limit_w)
                self.grid_power_w.append(watts)
                self.grid_power_limit_w.append(power_limit_w)
                self._meter_demand(now, dt, watts)
            above |= self._check(
                self._power + node, now, dt, abs(watts) / per_phase, power_limit_w / per_phase
            )
            if node == 0:
                self.export_limit_w.append(export_limit_w)
                above |= self._check(
                    self._export, now, dt, max(-watts, 0.0) / per_phase, export_limit_w / per_phase
                )
            if above:
                self._above_s[node] += dt

    def _meter_demand(self, now: float, dt: float, watts: float) -> None:
        """Add the step's import to its demand interval (a step across a boundary: the one
        it starts in)."""
        number = int((self.demand.start_s + now) // self.demand.interval_s)
        self._intervals[number] = self._intervals.get(number, 0.0) + max(watts, 0.0) * dt

    def _check(self, k: int, now: float, dt: float, value: float, cap: float) -> bool:
        """Follow streak `k` through this step; whether `value` is above `cap`."""
        if cap < self._last_limit[k]:
            self._lowered_at[k] = now
        self._last_limit[k] = cap
        if value <= cap + EPSILON_A:
            if self._streak_start[k] is not None:
                self._close(k, now)
            return False
        if self._streak_start[k] is None:
            lowered = self._lowered_at[k]
            self._streak_start[k] = now
            self._streak_cause[k] = lowered if now - lowered <= self.reaction_s else now
            self._streak_beyond[k] = 0.0
            self._streak_worst[k] = 0.0
        beyond = min(dt, now + dt - (self._streak_cause[k] + self.reaction_s))
        if beyond > 0:
            self._streak_beyond[k] += beyond
        self._streak_worst[k] = max(self._streak_worst[k], value - cap)
        return True

    def _close(self, k: int, end: float) -> None:
        start = self._streak_start[k]
        assert start is not None
        self._streak_start[k] = None
        if self._streak_beyond[k] > 0:
            if k == self._export:
                node, phase = 0, EXPORT
            elif k >= self._power:
                node, phase = k - self._power, POWER
            else:
                node, phase = k // 3, PHASES[k % 3]
            self._violations.append(
                Violation(
                    node=self.node_ids[node],
                    phase=phase,
                    cause_s=self._streak_cause[k],
                    start_s=start,
                    end_s=end,
                    seconds_beyond=self._streak_beyond[k],
                    worst_excess_a=self._streak_worst[k],
                )
            )

    def summary(self) -> Summary:
        """The report so far; streaks still open end now."""
        for k, start in enumerate(self._streak_start):
            if start is not None:
                self._close(k, self._end)
        peaks = tuple(
            NodePeak(node, PHASES[phase], amps, at, self._above_s[i])
            for i, (node, (amps, phase, at)) in enumerate(
                zip(self.node_ids, self._peak, strict=True)
            )
        )
        violations = sorted(self._violations, key=lambda v: (v.start_s, v.node, v.phase))
        target_w = self.demand.target_w
        return Summary(
            self._end,
            self.reaction_s,
            self.energy_kwh,
            peaks,
            tuple(violations),
            self._left,
            self._finished,
            demand_peak_kw=max(self._intervals.values(), default=0.0)
            / self.demand.interval_s
            / 1000.0,
            demand_target_kw=None if target_w is None else target_w / 1000.0,
        )
