"""Invariants of an allocation, recomputed from scratch for any implementation's output."""

from __future__ import annotations

import math
from collections.abc import Sequence

from tests.support.allocation_sites import Site

EPS = 1e-6


def lo(site: Site, i: int) -> float:
    c = site.connectors[i]
    return math.ceil(c.min_a / c.step_a - 1e-9) * c.step_a


def hi(site: Site, i: int) -> float:
    c = site.connectors[i]
    top = math.floor(c.max_a / c.step_a + 1e-9) * c.step_a
    ev = site.ev_max[i]
    if math.isfinite(ev):
        top = min(top, math.floor(ev / c.step_a + 1e-9) * c.step_a)
    return max(top, lo(site, i))


def on_path(site: Site, node: int, target: int) -> bool:
    at: int | None = node
    while at is not None:
        if at == target:
            return True
        at = site.nodes[at].parent
    return False


def draw(site: Site, i: int, phases: int, amps: float) -> list[float]:
    c = site.connectors[i]
    if phases == 1 and c.phases != "3p":
        d = [0.0, 0.0, 0.0]
        d[c.phase] = amps
        return d
    return [amps, amps, amps]


def root(site: Site) -> int:
    return next(i for i, n in enumerate(site.nodes) if n.parent is None)


def caps(site: Site) -> list[float]:
    """Capacity left per limit: per node L1, L2, L3, power; then grid operator, peak, PV."""
    v = site.settings.voltage_v
    out = []
    for n, node in enumerate(site.nodes):
        b = site.base[3 * n : 3 * n + 3]
        out += [node.phase_cap_a[p] - b[p] for p in range(3)]
        out.append(node.power_cap_w - v * sum(b))
    r = root(site)
    root_w = v * sum(site.base[3 * r : 3 * r + 3])
    gop = site.gop - root_w if math.isfinite(site.gop) else math.inf
    return [*out, gop, site.peak - root_w, site.pv_budget]


def usage(site: Site, amps: Sequence[float], phases: Sequence[int]) -> list[float]:
    """What each limit of `caps` carries."""
    v = site.settings.voltage_v
    n = len(site.nodes)
    out = [0.0] * (4 * n + 3)
    for i, c in enumerate(site.connectors):
        d = draw(site, i, phases[i], amps[i])
        w = sum(d) * v
        for node in range(n):
            if on_path(site, c.node, node):
                for p in range(3):
                    out[4 * node + p] += d[p]
                out[4 * node + 3] += w
        out[4 * n] += w
        out[4 * n + 1] += w
        if site.pv[i]:
            out[4 * n + 2] += w
    return out


def tolerance(cap: float) -> float:
    return EPS * (1 + abs(cap))


def assert_within_caps(site: Site, amps: Sequence[float], phases: Sequence[int]) -> None:
    for k, (used, cap) in enumerate(zip(usage(site, amps, phases), caps(site), strict=True)):
        assert used <= cap + tolerance(cap) or used <= EPS, f"limit {k} carries {used} > {cap}"


def assert_setpoint_shape(site: Site, amps: Sequence[float]) -> None:
    for i, c in enumerate(site.connectors):
        x = amps[i]
        if x == 0:
            continue
        assert site.wanting[i], f"{i} does not want current but gets {x}"
        assert lo(site, i) - EPS <= x <= hi(site, i) + EPS, f"{i}: {x} outside [min, max]"
        steps = x / c.step_a
        assert abs(steps - round(steps)) < 1e-6, f"{i}: {x} is no multiple of {c.step_a}"


def phase_currents(site: Site, amps: Sequence[float], phases: Sequence[int]) -> list[list[float]]:
    use = usage(site, amps, phases)
    return [
        [use[4 * n + p] + site.base[3 * n + p] for p in range(3)] for n in range(len(site.nodes))
    ]


def gap(currents: Sequence[float]) -> float:
    return max(currents) - min(currents)


def can_raise(
    site: Site, target: Sequence[float], phases: Sequence[int], i: int, delta: float
) -> bool:
    """Whether raising connector i by delta keeps every limit, unbalance included."""
    raised = list(target)
    raised[i] += delta
    for used, cap in zip(usage(site, raised, phases), caps(site), strict=True):
        if used > cap + tolerance(cap):
            return False
    before = phase_currents(site, target, phases)
    after = phase_currents(site, raised, phases)
    return all(
        gap(after[n]) <= max(node.unbalance_cap_a, gap(before[n])) + EPS
        for n, node in enumerate(site.nodes)
    )


def assert_pareto(site: Site, target: Sequence[float], phases: Sequence[int]) -> None:
    for i, c in enumerate(site.connectors):
        x = target[i]
        if x > 0 and x + c.step_a <= hi(site, i) + EPS:
            assert not can_raise(site, target, phases, i, c.step_a), (
                f"{i} at {x} could take one more step"
            )


def assert_transition(
    site: Site,
    old: Sequence[float],
    old_phases: Sequence[int],
    new: Sequence[float],
    new_phases: Sequence[int],
) -> None:
    """Sum of max(old, new) per limit within its cap, unless the old setpoints alone
    exceeded it, in which case nobody in it was raised."""
    v = site.settings.voltage_v
    n = len(site.nodes)
    worst = [0.0] * (4 * n + 3)
    raised = [False] * (4 * n + 3)
    for i, c in enumerate(site.connectors):
        before = draw(site, i, old_phases[i], old[i])
        after = draw(site, i, new_phases[i], new[i])
        wb, wa = sum(before) * v, sum(after) * v
        slots: list[tuple[int, float, float]] = []
        for node in range(n):
            if on_path(site, c.node, node):
                slots += [(4 * node + p, before[p], after[p]) for p in range(3)]
                slots.append((4 * node + 3, wb, wa))
        slots += [(4 * n, wb, wa), (4 * n + 1, wb, wa)]
        if site.pv[i]:
            slots.append((4 * n + 2, wb, wa))
        for k, b, a in slots:
            worst[k] += max(b, a)
            raised[k] |= a > b + EPS
    old_use = usage(site, old, old_phases)
    for k, cap in enumerate(caps(site)):
        over_before = old_use[k] > cap + tolerance(cap)
        assert (
            worst[k] <= cap + tolerance(cap) or (over_before and not raised[k]) or worst[k] <= EPS
        ), f"limit {k}: sum of max(old, new) {worst[k]} > {cap}"
