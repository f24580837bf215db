"""The limit in force on a node, in amperes per phase and in kilowatts, and what sets it.

Every limit on a node is a `Bound`: its rating from the site file (`cap`), each lease in the
limit book (grid operator, API, CSMS, Modbus server, site file), and at the grid connection
the peak target. A power limit stands for the same current on three phases at the site's
voltage, a phase limit for `voltage x (L1 + L2 + L3)` of power, so every bound compares in
both units and the tightest one per phase is the limit in force. What the control loop
allocates under, the dashboard draws and `/metrics` exports all come from here, so they show
the same limit (a grid-operator step to 300 kW is 435 A per phase at 230 V, not the 1580 A
rating of the connection).

`fold_leases` folds the leases into a cycle's allocator input. Sans-IO: time (`now`,
monotonic seconds) is an input.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable
from dataclasses import dataclass

from hubgate.control.allocation import SiteAllocator
from hubgate.control.decisions import Phases3
from hubgate.control.limits import SITE, Limit, LimitBook, LimitSource
from hubgate.control.site_model import UNLIMITED_A, UNLIMITED_KW, SiteModel

CAP = "cap"
"""The source name of a node's own rating in the site file."""
PEAK_TARGET = "peak-target"
"""The source name of the site file's peak or contract target on grid import."""
GRID_OPERATOR = LimitSource.GRID_OPERATOR.value


@dataclass(frozen=True)
class Bound:
    """One limit on a node: per-phase current and/or power, from `source`."""

    source: str
    phase_a: Phases3 | None
    power_kw: float | None
    expires_at: float | None
    """Monotonic time it lapses; None: it holds until changed."""
    origin: str

    def as_phase_a(self, voltage_v: float) -> Phases3:
        """This bound as current per phase (a power limit spread over three phases)."""
        per_phase = math.inf if self.power_kw is None else self.power_kw * 1000 / (3 * voltage_v)
        phase = self.phase_a or (math.inf, math.inf, math.inf)
        return (min(phase[0], per_phase), min(phase[1], per_phase), min(phase[2], per_phase))

    def as_power_kw(self, voltage_v: float) -> float:
        """This bound as power (a phase limit at full current on every phase)."""
        power = math.inf if self.power_kw is None else self.power_kw
        if self.phase_a is not None:
            power = min(power, voltage_v * sum(self.phase_a) / 1000)
        return power


@dataclass(frozen=True)
class NodeLimit:
    """The limit in force on one node and every bound it was taken from."""

    phase_a: Phases3
    """Tightest per phase, A."""
    power_kw: float
    """The most the node can carry under `phase_a` at the site's voltage, kW."""
    phase_sources: tuple[str, str, str]
    """The source that sets each phase's limit."""
    source: str
    """The source of the tightest phase's limit."""
    expires_at: float | None
    """When the binding bound lapses (monotonic); None: it holds until changed."""
    bounds: tuple[Bound, ...]

    @property
    def unlimited(self) -> bool:
        """No finite limit at all (a node without a rating or lease)."""
        return min(self.phase_a) >= UNLIMITED_A


def node_bounds(
    model: SiteModel,
    book: LimitBook,
    node: int,
    now: float,
    *,
    operator_sources: frozenset[LimitSource] = frozenset({LimitSource.GRID_OPERATOR}),
    peak_target_kw: float | None = None,
) -> tuple[Bound, ...]:
    """Every limit on `node` now: its rating, the leases on its target (a power lease from
    one of `operator_sources` on the grid connection is the grid operator's), and at the root
    the peak target."""
    cap_a = model.caps_a[node]
    cap_kw = model.power_kw[node]
    bounds = [
        Bound(
            CAP,
            None if min(cap_a) >= UNLIMITED_A else cap_a,
            None if cap_kw >= UNLIMITED_KW else cap_kw,
            None,
            "site file",
        )
    ]
    target = model.limit_target(node)
    book.expire(now)
    for lease in book.leases():
        if lease.target != target:
            continue
        source = lease.source.value
        if node == 0 and lease.source in operator_sources and lease.limit.power_kw is not None:
            source = GRID_OPERATOR
        bounds.append(
            Bound(source, lease.limit.phase_a, lease.limit.power_kw, lease.expires_at, lease.origin)
        )
    if node == 0 and peak_target_kw is not None:
        bounds.append(Bound(PEAK_TARGET, None, peak_target_kw, None, "site file"))
    return tuple(bounds)


def node_limit(bounds: tuple[Bound, ...], voltage_v: float) -> NodeLimit:
    """The limit in force from `bounds` (the node's cap first): the tightest bound per phase
    (a lease that equals the cap binds, not the cap), its power at the site's voltage."""
    phase = [math.inf, math.inf, math.inf]
    binding: list[Bound | None] = [None, None, None]
    for bound in bounds:
        amps = bound.as_phase_a(voltage_v)
        for p in range(3):
            held = binding[p]
            if amps[p] < phase[p] or (
                amps[p] == phase[p] and held is not None and held.source == CAP
            ):
                phase[p], binding[p] = amps[p], bound
    limit_a = (min(phase[0], UNLIMITED_A), min(phase[1], UNLIMITED_A), min(phase[2], UNLIMITED_A))
    sources = tuple(CAP if b is None else b.source for b in binding)
    tightest = binding[min(range(3), key=lambda p: phase[p])]
    return NodeLimit(
        phase_a=limit_a,
        power_kw=min(voltage_v * sum(limit_a) / 1000, UNLIMITED_KW),
        phase_sources=(sources[0], sources[1], sources[2]),
        source=CAP if tightest is None else tightest.source,
        expires_at=None if tightest is None else tightest.expires_at,
        bounds=bounds,
    )


def shared_caps(
    bounds: tuple[Bound, ...],
    scheduled: Iterable[Limit],
    voltage_v: float,
    base_a: Phases3,
    demand_w: tuple[float, float],
    current: int = 1,
) -> list[float]:
    """Per planning slot (one `scheduled` limit each), the power the sessions may share: the
    root's limit in force from `bounds` but the schedule's lease (which holds only now),
    tightened by the slot's scheduled limit and the demand cap (`demand_w`: this interval's
    for the first `current` slots, then the target's), less the rest of the site as it is
    now (`base_a`, the root's base load per phase), in W."""
    held = node_limit(
        tuple(b for b in bounds if b.source != LimitSource.SCHEDULE.value), voltage_v
    ).phase_a
    base_w = sum(base_a) * voltage_v
    caps = []
    for k, limit in enumerate(scheduled):
        phase = Limit(held).tighten(limit).phase_a or held
        power_w = demand_w[0] if k < current else demand_w[1]
        if limit.power_kw is not None:
            power_w = min(power_w, limit.power_kw * 1000)
            per_phase = limit.power_kw * 1000 / (3 * voltage_v)
            phase = (min(phase[0], per_phase), min(phase[1], per_phase), min(phase[2], per_phase))
        shared = sum(max(phase[p] - base_a[p], 0.0) for p in range(3)) * voltage_v
        caps.append(min(shared, power_w - base_w))
    return caps


def fold_leases(
    book: LimitBook,
    model: SiteModel,
    allocator: SiteAllocator,
    now: float,
    base: array[float],
    ev_max: array[float],
    *,
    operator_power_source: LimitSource | None,
    safety_margin_a: float,
) -> tuple[float, float]:
    """Fold the limit book's leases into a cycle's allocator input: a node's limit as extra
    base load (the headroom it takes away), a connector's into `ev_max`, the grid operator's
    power lease on the site (`GRID_OPERATOR` or `operator_power_source`) apart. Returns (the
    grid operator's limit less the safety margin, the site's power lease), in W."""
    book.expire(now)
    by_target: dict[str, Limit] = {}
    operator_kw = math.inf
    for lease in book.leases():
        if (
            lease.target == SITE
            and lease.limit.power_kw is not None
            and (lease.source is LimitSource.GRID_OPERATOR or lease.source is operator_power_source)
        ):
            operator_kw = min(operator_kw, lease.limit.power_kw)
            if lease.limit.phase_a is None:
                continue
            limit = Limit(lease.limit.phase_a)
        else:
            limit = lease.limit
        previous = by_target.get(lease.target)
        by_target[lease.target] = limit if previous is None else previous.tighten(limit)
    peak_w = math.inf
    for target, limit in by_target.items():
        node = 0 if target == SITE else allocator.find_node(target)
        if node is None:
            index = allocator.find_connector(target)
            if index is not None:
                ev_max[index] = min(ev_max[index], _connector_cap(limit, model, index))
            continue
        if limit.phase_a is not None:
            for p in range(3):
                base[3 * node + p] += max(model.caps_a[node][p] - limit.phase_a[p], 0.0)
        if limit.power_kw is not None:
            if node == 0:
                peak_w = min(peak_w, limit.power_kw * 1000)
            else:  # the headroom it takes from what the node can carry (its rating or phases)
                rated_w = min(
                    model.power_kw[node] * 1000, sum(model.caps_a[node]) * model.voltage_v
                )
                cut = max(rated_w - limit.power_kw * 1000, 0.0)
                for p in range(3):
                    base[3 * node + p] += cut / (3 * model.voltage_v)
    margin_w = 3 * model.voltage_v * safety_margin_a
    return max(operator_kw * 1000 - margin_w, 0.0), peak_w


def _connector_cap(limit: Limit, model: SiteModel, index: int) -> float:
    cap = math.inf
    if limit.phase_a is not None:
        cap = min(limit.phase_a)
    if limit.power_kw is not None:
        phases = 1 if model.connectors[index].one_phase else 3
        cap = min(cap, limit.power_kw * 1000 / (phases * model.voltage_v))
    return cap
