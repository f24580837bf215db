"""A straightforward pure-Python allocator: the differential reference for the Rust core.

Same pipeline and rules as `rust/core/src/alloc` (admission, weighted
progressive filling, unbalance tightening, rounding with hand-back, transition
shaping), written for clarity: every constraint is a plain object and the
filling recomputes every load at every event, O(E·N·M).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

from hubgate._core import AllocConnector, AllocNode, AllocReason, AllocSettings

EPS = 1e-9
UNBALANCE_PASSES = 4

# Reason codes, from the extension's enum.
NOT_WANTING = int(AllocReason.NOT_WANTING)
OWN_MAXIMUM = int(AllocReason.OWN_MAXIMUM)
PHASE_CURRENT = int(AllocReason.PHASE_CURRENT)
POWER = int(AllocReason.POWER)
UNBALANCE = int(AllocReason.UNBALANCE)
GRID_OPERATOR = int(AllocReason.GRID_OPERATOR)
PEAK_TARGET = int(AllocReason.PEAK_TARGET)
PV_BUDGET = int(AllocReason.PV_BUDGET)
PAUSED_NO_CAPACITY = int(AllocReason.PAUSED_NO_CAPACITY)
PAUSED_MIN_OFF = int(AllocReason.PAUSED_MIN_OFF)
RAMPING = int(AllocReason.RAMPING)
CHANGE_INTERVAL = int(AllocReason.CHANGE_INTERVAL)
AWAITING_HEADROOM = int(AllocReason.AWAITING_HEADROOM)


def ceil_to_step(value: float, step: float) -> float:
    return math.ceil(value / step - 1e-9) * step


def floor_to_step(value: float, step: float) -> float:
    if not math.isfinite(value):
        return value
    return math.floor(value / step + 1e-9) * step


@dataclass
class Constraint:
    """sum(coefficient(i) * x_i) <= cap over the connectors below `node`."""

    kind: str  # phase, power, unbalance, gop, peak, pv
    node: int
    phase: int
    cap: float = math.inf

    def describe(self) -> tuple[int, int, int]:
        reason = {
            "phase": PHASE_CURRENT,
            "power": POWER,
            "unbalance": UNBALANCE,
            "gop": GRID_OPERATOR,
            "peak": PEAK_TARGET,
            "pv": PV_BUDGET,
        }[self.kind]
        return reason, self.node, self.phase


@dataclass
class State:
    """What the allocator remembers about one connector."""

    phases: int
    wanting: bool = False
    setpoint: float = 0.0
    on_since: float = -math.inf
    off_since: float = -math.inf
    queue_since: float = -math.inf
    changed_at: float = -math.inf
    reserve_phase: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    reserve_power: float = 0.0
    reserve_until: float = -math.inf
    last_switch: float = -math.inf
    switches: int = 0


@dataclass
class Result:
    setpoint_a: list[float]
    target_a: list[float]
    fair_a: list[float]
    phases: list[int]
    reason: list[int]
    binding_node: list[int]
    binding_phase: list[int]


OWN = -1


class ReferenceAllocator:
    """The reference allocator; same constructor arguments as `hubgate._core.Allocator`."""

    def __init__(
        self,
        nodes: list[AllocNode],
        connectors: list[AllocConnector],
        settings: AllocSettings | None = None,
    ) -> None:
        self.nodes = nodes
        self.conns = connectors
        self.s = settings or AllocSettings()
        self.v = self.s.voltage_v
        self.root = next(i for i, n in enumerate(nodes) if n.parent is None)
        self.paths = [self._path(n) for n in range(len(nodes))]
        self.lo = [ceil_to_step(c.min_a, c.step_a) for c in connectors]
        self.hw_hi = [floor_to_step(c.max_a, c.step_a) for c in connectors]
        self.states = [State(self._default_phases(c)) for c in connectors]
        self.last_now = -math.inf

    def _path(self, node: int) -> list[int]:
        path = []
        at: int | None = node
        while at is not None:
            path.append(at)
            at = self.nodes[at].parent
        return path

    @staticmethod
    def _default_phases(c: AllocConnector) -> int:
        return 1 if c.phases == "1p" else 3

    # -- constraints -----------------------------------------------------------

    def _build(self, base: list[float], gop: float, peak: float, pv: float) -> None:
        n = len(self.nodes)
        self.phase_k = {}
        self.power_k = {}
        self.unbalance_k = {}
        cons: list[Constraint] = []
        for node, spec in enumerate(self.nodes):
            for p in range(3):
                if math.isfinite(spec.phase_cap_a[p]):
                    self.phase_k[(node, p)] = len(cons)
                    cons.append(
                        Constraint("phase", node, p, spec.phase_cap_a[p] - base[3 * node + p])
                    )
            if math.isfinite(spec.power_cap_w):
                self.power_k[node] = len(cons)
                b = base[3 * node] + base[3 * node + 1] + base[3 * node + 2]
                cons.append(Constraint("power", node, -1, spec.power_cap_w - self.v * b))
            if math.isfinite(spec.unbalance_cap_a):
                for p in range(3):
                    self.unbalance_k[(node, p)] = len(cons)
                    cons.append(Constraint("unbalance", node, p))
        r = self.root
        root_base_w = self.v * (base[3 * r] + base[3 * r + 1] + base[3 * r + 2])
        self.gop_k = self.peak_k = self.pv_k = None
        if math.isfinite(gop):
            self.gop_k = len(cons)
            cons.append(Constraint("gop", r, -1, gop - root_base_w))
        if math.isfinite(peak):
            self.peak_k = len(cons)
            cons.append(Constraint("peak", r, -1, peak - root_base_w))
        if math.isfinite(pv):
            self.pv_k = len(cons)
            cons.append(Constraint("pv", r, -1, pv))
        self.cons = cons
        del n

    def terms(self, i: int, mode: int, pv: bool) -> list[tuple[int, float]]:
        """(constraint, coefficient) of connector i, in the Rust core's order."""
        c = self.conns[i]
        out = []
        power = mode * self.v
        for node in self.paths[c.node]:
            phases = range(3) if mode == 3 else [c.phase]
            for p in phases:
                if (node, p) in self.phase_k:
                    out.append((self.phase_k[(node, p)], 1.0))
            if mode == 1 and (node, c.phase) in self.unbalance_k:
                out.append((self.unbalance_k[(node, c.phase)], 1.0))
            if node in self.power_k:
                out.append((self.power_k[node], power))
        for k in (self.gop_k, self.peak_k):
            if k is not None:
                out.append((k, power))
        if self.pv_k is not None and pv:
            out.append((self.pv_k, power))
        return out

    def draw_terms(
        self, i: int, phase_a: list[float], power_w: float, pv: bool
    ) -> list[tuple[int, float]]:
        """(constraint, amount) of a physical draw, in the Rust core's order."""
        out = []
        for node in self.paths[self.conns[i].node]:
            for p in range(3):
                if (node, p) in self.phase_k:
                    out.append((self.phase_k[(node, p)], phase_a[p]))
            if node in self.power_k:
                out.append((self.power_k[node], power_w))
        for k in (self.gop_k, self.peak_k):
            if k is not None:
                out.append((k, power_w))
        if self.pv_k is not None and pv:
            out.append((self.pv_k, power_w))
        return out

    def draw(self, i: int, mode: int, amps: float) -> tuple[list[float], float]:
        if amps <= 0:
            return [0.0, 0.0, 0.0], 0.0
        c = self.conns[i]
        phase = [0.0, 0.0, 0.0]
        if mode == 1 and c.phases != "3p":
            phase[c.phase] = amps
        else:
            phase = [amps, amps, amps]
        return phase, amps * mode * self.v

    # -- the cycle -------------------------------------------------------------

    def allocate(
        self,
        now: float,
        base_load_a: list[float],
        ev_max_a: list[float],
        wanting: list[int],
        pv_mode: list[int] | None = None,
        grid_operator_w: float = math.inf,
        peak_w: float = math.inf,
        pv_budget_w: float = math.inf,
    ) -> Result:
        n_conn = len(self.conns)
        pv_mode = pv_mode or [0] * n_conn
        if now < self.last_now:
            raise ValueError("time went back")
        self.last_now = now
        for i, st in enumerate(self.states):
            w = bool(wanting[i])
            if w and not st.wanting:
                st.wanting = True
                st.queue_since = now
            elif not w and st.wanting:
                st.wanting = False
                st.phases = self._default_phases(self.conns[i])
                st.off_since = -math.inf
                st.switches = 0
                st.last_switch = -math.inf
        self.pv = [bool(p) for p in pv_mode]
        self.hi = []
        for i, c in enumerate(self.conns):
            ev = floor_to_step(ev_max_a[i], c.step_a)
            self.hi.append(max(min(self.hw_hi[i], ev), self.lo[i]))
        self._build(base_load_a, grid_operator_w, peak_w, pv_budget_w)
        self.base = base_load_a
        zeros = [0.0] * n_conn
        res = Result(
            list(zeros),
            list(zeros),
            list(zeros),
            [3] * n_conn,
            [0] * n_conn,
            [-1] * n_conn,
            [-1] * n_conn,
        )
        self._admit(now, res)
        self._fill()
        if self.unbalance_k:
            for _ in range(UNBALANCE_PASSES):
                if not self._tighten(res):
                    break
                self._fill()
        res.fair_a = [self.x[i] if self.admitted[i] else 0.0 for i in range(n_conn)]
        self._round_down()
        self._repair(res)
        self._hand_back()
        for i in range(n_conn):
            res.target_a[i] = self.x[i] if self.admitted[i] else 0.0
            res.phases[i] = self.mode[i]
            if self.admitted[i]:
                if self.bound[i] == OWN:
                    self._set(res, i, (OWN_MAXIMUM, -1, -1))
                else:
                    self._set(res, i, self.cons[self.bound[i]].describe())
        self._shape(now, res)
        self._remember(now, res)
        return res

    @staticmethod
    def _set(res: Result, i: int, why: tuple[int, int, int]) -> None:
        res.reason[i], res.binding_node[i], res.binding_phase[i] = why

    def _loads(self) -> list[float]:
        load = [0.0] * len(self.cons)
        for i in self.order:
            for k, a in self.terms(i, self.mode[i], self.pv[i]):
                load[k] += a * self.x[i]
        return load

    # -- 1: admission ----------------------------------------------------------

    def _modes(self, i: int, now: float) -> list[int]:
        c, st = self.conns[i], self.states[i]
        if c.phases == "1p":
            return [1]
        if c.phases == "3p":
            return [3]
        budget = self.s.max_phase_switches == 0 or st.switches < self.s.max_phase_switches
        on = st.setpoint > 0
        if not on or (now - st.last_switch >= self.s.phase_switch_s and budget):
            return [3, 1]
        return [st.phases]

    def _admit(self, now: float, res: Result) -> None:
        n = len(self.conns)
        self.admitted = [False] * n
        self.x = [0.0] * n
        self.mode = [st.phases for st in self.states]
        self.bound = [OWN] * n
        keys = []
        for i, st in enumerate(self.states):
            if not st.wanting:
                self._set(res, i, (NOT_WANTING, -1, -1))
                continue
            if now - st.off_since < self.s.min_off_s:
                self._set(res, i, (PAUSED_MIN_OFF, -1, -1))
                continue
            on = st.setpoint > 0
            protected = on and now - st.on_since < self.s.min_on_s
            since = -st.on_since if on else st.queue_since
            keys.append((not protected, -self.conns[i].priority, on, since, i))
        keys.sort()
        load = [0.0] * len(self.cons)
        self.order = []
        for *_, i in keys:
            lo = self.lo[i]
            first_block = None
            for mode in self._modes(i, now):
                block = next(
                    (
                        k
                        for k, a in self.terms(i, mode, self.pv[i])
                        if load[k] + a * lo > self.cons[k].cap + EPS
                    ),
                    None,
                )
                if block is None:
                    self.admitted[i] = True
                    self.mode[i] = mode
                    self.x[i] = lo
                    self.order.append(i)
                    for k, a in self.terms(i, mode, self.pv[i]):
                        load[k] += a * lo
                    break
                if first_block is None:
                    first_block = block
            if not self.admitted[i] and first_block is not None:
                _, node, phase = self.cons[first_block].describe()
                self._set(res, i, (PAUSED_NO_CAPACITY, node, phase))

    # -- 2: filling ------------------------------------------------------------

    def _fill(self) -> None:
        for i in self.order:
            self.x[i] = self.lo[i]
        tiers = sorted({self.conns[i].priority for i in self.order}, reverse=True)
        for tier in tiers:
            self._fill_tier([i for i in sorted(self.order) if self.conns[i].priority == tier])

    def _fill_tier(self, members: list[int]) -> None:
        """x_i(t) = clamp(w_i t, lo_i, hi_i) until a limit saturates or hi_i is reached."""
        status = {}
        for i in members:
            if self.hi[i] <= self.lo[i] + EPS:
                status[i] = "frozen"
                self.x[i] = self.lo[i]
                self.bound[i] = OWN
            else:
                status[i] = "waiting"
        terms = {i: self.terms(i, self.mode[i], self.pv[i]) for i in self.order}
        saturated = [False] * len(self.cons)
        t = 0.0
        while any(status[i] != "frozen" for i in members):
            fixed = [0.0] * len(self.cons)
            slope = [0.0] * len(self.cons)
            for i in self.order:
                growing = status.get(i) == "growing"
                for k, a in terms[i]:
                    if growing:
                        slope[k] += a * self.conns[i].weight
                    else:
                        fixed[k] += a * self.x[i]
            candidates = []
            for i in members:
                w = self.conns[i].weight
                if status[i] == "waiting":
                    candidates.append(self.lo[i] / w)
                elif status[i] == "growing":
                    candidates.append(self.hi[i] / w)
            for k, con in enumerate(self.cons):
                if not saturated[k] and slope[k] > 1e-12 and math.isfinite(con.cap):
                    candidates.append((con.cap - fixed[k]) / slope[k])
            t = max(t, min(candidates))
            for i in members:  # maxima first
                if status[i] == "growing" and self.hi[i] / self.conns[i].weight <= t:
                    self.x[i], self.bound[i], status[i] = self.hi[i], OWN, "frozen"
            for k, con in enumerate(self.cons):  # then saturations
                if saturated[k] or slope[k] <= 1e-12 or not math.isfinite(con.cap):
                    continue
                if con.cap - (fixed[k] + slope[k] * t) > EPS * (1 + abs(con.cap)):
                    continue
                saturated[k] = True
                for i in members:
                    if status[i] != "frozen" and any(kk == k and a > 0 for kk, a in terms[i]):
                        grown = min(max(self.conns[i].weight * t, self.lo[i]), self.hi[i])
                        self.x[i] = grown if status[i] == "growing" else self.lo[i]
                        self.bound[i], status[i] = k, "frozen"
            for i in members:  # then activations
                if status[i] == "waiting" and self.lo[i] / self.conns[i].weight <= t:
                    status[i] = "growing"

    # -- 3: unbalance ----------------------------------------------------------

    def _one_phase_on(self, i: int, p: int) -> bool:
        c = self.conns[i]
        return self.mode[i] == 1 and c.phases != "3p" and c.phase == p

    def _below(self, i: int, node: int) -> bool:
        return node in self.paths[self.conns[i].node]

    def _currents(self, node: int) -> list[float]:
        cur = [self.base[3 * node + p] for p in range(3)]
        for i in range(len(self.conns)):
            if self.admitted[i] and self._below(i, node):
                if self.mode[i] == 1 and self.conns[i].phases != "3p":
                    cur[self.conns[i].phase] += self.x[i]
                else:
                    cur = [c + self.x[i] for c in cur]
        return cur

    def _unbalance_nodes(self) -> list[int]:
        return [n for n, spec in enumerate(self.nodes) if math.isfinite(spec.unbalance_cap_a)]

    def _pause(self, res: Result, i: int, node: int, p: int) -> None:
        self.admitted[i] = False
        self.x[i] = 0.0
        self._set(res, i, (UNBALANCE, node, p))

    def _tighten(self, res: Result) -> bool:
        changed = False
        for node in self._unbalance_nodes():
            limit = self.nodes[node].unbalance_cap_a
            cur = self._currents(node)
            low = min(cur)
            for p in range(3):
                excess = cur[p] - low - limit
                if excess <= EPS:
                    continue
                one = sum(
                    self.x[i]
                    for i in self.order
                    if self.admitted[i] and self._below(i, node) and self._one_phase_on(i, p)
                )
                mins = sum(
                    self.lo[i]
                    for i in self.order
                    if self.admitted[i] and self._below(i, node) and self._one_phase_on(i, p)
                )
                cap = max(one - excess, 0.0)
                con = self.cons[self.unbalance_k[(node, p)]]
                if cap < con.cap - 1e-9:
                    con.cap = cap
                    changed = True
                for i in reversed(self.order):
                    if mins <= cap + EPS:
                        break
                    if self.admitted[i] and self._below(i, node) and self._one_phase_on(i, p):
                        mins -= self.lo[i]
                        self._pause(res, i, node, p)
                        changed = True
        if changed:
            self.order = [i for i in self.order if self.admitted[i]]
        return changed

    def _repair(self, res: Result) -> None:
        acted = True
        while acted:
            acted = False
            for node in self._unbalance_nodes():
                limit = self.nodes[node].unbalance_cap_a
                while True:
                    cur = self._currents(node)
                    gap = max(cur) - min(cur)
                    if gap <= limit + EPS:
                        break
                    high = max(range(3), key=lambda p: (cur[p], p))
                    pick = next(
                        (
                            i
                            for i in reversed(self.order)
                            if self.admitted[i]
                            and self._below(i, node)
                            and self._one_phase_on(i, high)
                        ),
                        None,
                    )
                    if pick is None:
                        break
                    acted = True
                    step = self.conns[pick].step_a
                    steps = max(math.ceil((gap - limit) / step - 1e-9), 1)
                    lowered = self.x[pick] - steps * step
                    if lowered < self.lo[pick] - EPS:
                        self._pause(res, pick, node, high)
                    else:
                        self.x[pick] = lowered
                        self.bound[pick] = self.unbalance_k[(node, high)]
        self.order = [i for i in self.order if self.admitted[i]]

    # -- 4: rounding and hand-back ---------------------------------------------

    def _round_down(self) -> None:
        for i in self.order:
            self.x[i] = min(
                max(floor_to_step(self.x[i], self.conns[i].step_a), self.lo[i]), self.hi[i]
            )

    def _blocks(self, cur: dict[int, list[float]], i: int, delta: float) -> tuple[int, int] | None:
        c = self.conns[i]
        if not cur or self.mode[i] != 1 or c.phases == "3p":
            return None
        for node in self.paths[c.node]:
            if node not in cur:
                continue
            before = cur[node]
            after = list(before)
            after[c.phase] += delta
            limit = self.nodes[node].unbalance_cap_a
            if max(after) - min(after) > max(limit, max(before) - min(before)) + EPS:
                return node, c.phase
        return None

    def _hand_back(self) -> None:
        load = self._loads()
        cur = {node: self._currents(node) for node in self._unbalance_nodes()}
        heap = []
        for i in self.order:
            if self.x[i] >= self.hi[i] - EPS:
                self.bound[i] = OWN
            else:
                heap.append((255 - self.conns[i].priority, self.x[i] / self.conns[i].weight, i))
        heapq.heapify(heap)
        deferred: list[tuple[int, float, int]] = []
        raised = False
        while True:
            if not heap:
                if not raised or not deferred:
                    break
                raised = False
                heap = deferred
                deferred = []
                heapq.heapify(heap)
                continue
            _, _, i = heapq.heappop(heap)
            step = self.conns[i].step_a
            if self.x[i] + step > self.hi[i] + EPS:
                self.bound[i] = OWN
                continue
            terms = self.terms(i, self.mode[i], self.pv[i])
            block = next(
                (
                    k
                    for k, a in terms
                    if self.cons[k].kind != "unbalance"
                    and load[k] + a * step > self.cons[k].cap + EPS
                ),
                None,
            )
            if block is None:
                hit = self._blocks(cur, i, step)
                if hit is not None:
                    block = self.unbalance_k[hit]
                    deferred.append(
                        (255 - self.conns[i].priority, self.x[i] / self.conns[i].weight, i)
                    )
            if block is not None:
                self.bound[i] = block
                continue
            self.x[i] = (round(self.x[i] / step) + 1) * step
            for k, a in terms:
                load[k] += a * step
            c = self.conns[i]
            for node in self.paths[c.node]:
                if node in cur:
                    if self.mode[i] == 1 and c.phases != "3p":
                        cur[node][c.phase] += step
                    else:
                        cur[node] = [v + step for v in cur[node]]
            heapq.heappush(heap, (255 - c.priority, self.x[i] / c.weight, i))
            raised = True

    # -- 5: shaping ------------------------------------------------------------

    def _old_draws(
        self, i: int, now: float
    ) -> tuple[tuple[list[float], float], tuple[list[float], float]]:
        st = self.states[i]
        sent = self.draw(i, st.phases, st.setpoint)
        held_phase = list(sent[0])
        held_power = sent[1]
        if now < st.reserve_until:
            held_phase = [max(a, b) for a, b in zip(held_phase, st.reserve_phase, strict=True)]
            held_power = max(held_power, st.reserve_power)
        return sent, (held_phase, held_power)

    def _shape(self, now: float, res: Result) -> None:
        s = self.s
        load = [0.0] * len(self.cons)
        rising = []
        for i, st in enumerate(self.states):
            _, (phase, power) = self._old_draws(i, now)
            for k, a in self.draw_terms(i, phase, power, self.pv[i]):
                load[k] += a
            target = res.target_a[i]
            base = min(st.setpoint, target) if self.mode[i] == st.phases else 0.0
            res.setpoint_a[i] = base
            if target > base + EPS:
                rising.append(i)
        rising.sort(key=lambda i: (255 - self.conns[i].priority, i))
        for i in rising:
            st = self.states[i]
            lo, step = self.lo[i], self.conns[i].step_a
            target, base = res.target_a[i], res.setpoint_a[i]
            starting = base <= 0
            elapsed = now - st.changed_at
            if not starting and elapsed < s.change_interval_s:
                self._set(res, i, (CHANGE_INTERVAL, -1, -1))
                continue
            limit = target
            why = (RAMPING, -1, -1)
            if math.isfinite(s.ramp_a_per_s):
                limit = min(limit, lo if starting else base + s.ramp_a_per_s * elapsed)
            (sent_phase, sent_power), (held_phase, held_power) = self._old_draws(i, now)
            unit_phase, unit_power = self.draw(i, self.mode[i], 1.0)
            block = None
            for k, a in self.draw_terms(i, unit_phase, unit_power, self.pv[i]):
                if a <= 0:
                    continue
                con = self.cons[k]
                if con.kind == "phase":
                    old, sent = held_phase[con.phase], sent_phase[con.phase]
                else:
                    old, sent = held_power, sent_power
                most = max(con.cap - load[k] + old, sent) / a
                if most < limit:
                    limit = most
                    block = k
            granted = min(floor_to_step(limit, step), target)
            if block is not None and granted < target - EPS:
                _, node, phase = self.cons[block].describe()
                why = (AWAITING_HEADROOM, node, phase)
            if granted > base + EPS and (not starting or granted >= lo - EPS):
                new_phase, new_power = self.draw(i, self.mode[i], granted)
                grow = [max(n - o, 0.0) for n, o in zip(new_phase, held_phase, strict=True)]
                for k, a in self.draw_terms(i, grow, max(new_power - held_power, 0.0), self.pv[i]):
                    load[k] += a
                res.setpoint_a[i] = granted
            if res.setpoint_a[i] < target - EPS:
                self._set(res, i, why)

    def _remember(self, now: float, res: Result) -> None:
        for i, st in enumerate(self.states):
            old, new, mode = st.setpoint, res.setpoint_a[i], res.phases[i]
            switched = mode != st.phases
            if abs(new - old) > 1e-12 or switched:
                st.changed_at = now
            if new < old - 1e-12 or (switched and old > 0):
                phase, power = self.draw(i, st.phases, old)
                active = now < st.reserve_until
                st.reserve_phase = [
                    max(r, p) if active else p for r, p in zip(st.reserve_phase, phase, strict=True)
                ]
                st.reserve_power = max(st.reserve_power, power) if active else power
                st.reserve_until = now + self.s.settle_s
            if switched and old > 0 and st.wanting:
                st.last_switch = now
                st.switches += 1
            if old <= 0 < new:
                st.on_since = now
            if old > 0 >= new and st.wanting and res.target_a[i] <= 0:
                st.off_since = now
                st.queue_since = now
            st.setpoint = new
            st.phases = mode
