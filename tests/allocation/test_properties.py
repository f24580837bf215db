"""Property and differential tests of the Rust allocator (hypothesis).

Every invariant of issue 6, checked on the Rust core through the Python API
and on the pure-Python reference, plus same-input-same-output between them.
"""

from __future__ import annotations

import math
import os
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hubgate._core import Allocator, AllocReason, AllocSettings
from tests.support import allocation_invariants as inv
from tests.support.allocation_reference import ReferenceAllocator
from tests.support.allocation_sites import Site, sites

CHECKS = settings(
    max_examples=int(os.environ.get("ALLOC_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
UNBALANCE = int(AllocReason.UNBALANCE)


def run(site: Site, now: float = 1000.0) -> tuple[list[float], list[float], list[int], list[int]]:
    out = Allocator(site.nodes, site.connectors, site.settings).allocate(**site.inputs(now))
    return list(out.target_a), list(out.setpoint_a), list(out.phases), list(out.reason)


@CHECKS
@given(sites())
def test_targets_and_setpoints_keep_every_limit(site: Site) -> None:
    target, setpoint, phases, _ = run(site)
    inv.assert_within_caps(site, target, phases)
    inv.assert_within_caps(site, setpoint, phases)
    inv.assert_setpoint_shape(site, target)
    inv.assert_setpoint_shape(site, setpoint)


@CHECKS
@given(sites())
def test_no_admitted_connector_can_take_one_more_step(site: Site) -> None:
    target, _, phases, _ = run(site)
    inv.assert_pareto(site, target, phases)


@CHECKS
@given(sites())
def test_unbalance_holds_unless_nothing_is_left_to_lower(site: Site) -> None:
    target, _, phases, _ = run(site)
    currents = inv.phase_currents(site, target, phases)
    for n, node in enumerate(site.nodes):
        if inv.gap(currents[n]) <= node.unbalance_cap_a + inv.EPS:
            continue
        high = max(currents[n])

        def one_phase_on(p: int, n: int = n) -> bool:
            return any(
                phases[i] == 1
                and c.phases != "3p"
                and c.phase == p
                and inv.on_path(site, c.node, n)
                and target[i] > 0
                for i, c in enumerate(site.connectors)
            )

        assert any(currents[n][p] >= high - inv.EPS and not one_phase_on(p) for p in range(3))


@CHECKS
@given(sites(unbalance=False))
def test_fair_shares_are_weighted_max_min_fair_and_targets_within_one_step(site: Site) -> None:
    """The fair shares have a bottleneck each (a saturated limit where no same-tier
    member is higher); rounding loses less than one step of them."""
    out = Allocator(site.nodes, site.connectors, site.settings).allocate(**site.inputs(1000.0))
    fair, target, phases = list(out.fair_a), list(out.target_a), list(out.phases)
    caps = inv.caps(site)
    used = inv.usage(site, fair, phases)
    n = len(site.nodes)
    v = site.settings.voltage_v

    def coefficient(k: int, j: int) -> float:
        c = site.connectors[j]
        d = inv.draw(site, j, phases[j], 1.0)
        if k < 4 * n:
            if not inv.on_path(site, c.node, k // 4):
                return 0.0
            return sum(d) * v if k % 4 == 3 else d[k % 4]
        if k == 4 * n + 2 and not site.pv[j]:
            return 0.0
        return sum(d) * v

    for i, ci in enumerate(site.connectors):
        if fair[i] <= 0:
            assert target[i] == 0
            continue
        assert target[i] >= fair[i] - ci.step_a - inv.EPS
        if fair[i] <= inv.lo(site, i) + inv.EPS or fair[i] >= inv.hi(site, i) - inv.EPS:
            continue
        level = fair[i] / ci.weight
        assert any(
            coefficient(k, i) > 0
            and used[k] >= cap - inv.tolerance(cap)
            and all(
                cj.priority != ci.priority
                or fair[j] <= inv.lo(site, j) + inv.EPS
                or coefficient(k, j) == 0
                or fair[j] / cj.weight <= level + inv.EPS
                for j, cj in enumerate(site.connectors)
            )
            for k, cap in enumerate(caps)
        ), f"connector {i} at {fair[i]} has no bottleneck"


@CHECKS
@given(sites())
def test_same_input_same_output(site: Site) -> None:
    a = Allocator(site.nodes, site.connectors, site.settings)
    b = Allocator(site.nodes, site.connectors, site.settings)
    for now in (0.0, 50.0, 400.0):
        oa, ob = a.allocate(**site.inputs(now)), b.allocate(**site.inputs(now))
        for column in (
            "setpoint_a",
            "target_a",
            "phases",
            "reason",
            "binding_node",
            "binding_phase",
        ):
            assert getattr(oa, column) == getattr(ob, column)


@CHECKS
@given(sites(unbalance=False), st.integers(1, 40))
def test_raising_the_grid_operator_cap_never_lowers_the_top_tier(site: Site, extra_kw: int) -> None:
    low = replace(site, gop=min(site.gop, 30_000.0))
    high = replace(low, gop=low.gop + extra_kw * 1000.0)
    tl, _, pl, _ = run(low)
    th, _, ph, _ = run(high)
    if [x > 0 for x in tl] != [x > 0 for x in th] or pl != ph or not any(tl):
        return  # admission differs: the property is for a fixed admission
    top = max(c.priority for i, c in enumerate(site.connectors) if tl[i] > 0)
    leftover = sum(
        3 * c.step_a for i, c in enumerate(site.connectors) if c.priority == top and tl[i] > 0
    )
    for i, c in enumerate(site.connectors):
        if c.priority == top:
            assert th[i] >= tl[i] - leftover - inv.EPS


TIMING = AllocSettings(
    min_on_s=20.0,
    min_off_s=10.0,
    change_interval_s=3.0,
    ramp_a_per_s=2.0,
    settle_s=8.0,
    phase_switch_s=15.0,
)


def vary(site: Site, seed: int, shift: int) -> Site:
    """The same site with the base load and who wants current changed by `seed`."""
    base = [max(b + ((seed >> (k % 60)) & 1) * shift * 0.5, 0.0) for k, b in enumerate(site.base)]
    wanting = [int((seed >> (i % 62)) & 3 != 0) for i in range(len(site.connectors))]
    return replace(site, base=base, wanting=wanting)


@CHECKS
@given(
    sites(),
    st.lists(
        st.tuples(st.integers(0, 30), st.integers(0, 40), st.integers(0, 2**62)),
        min_size=1,
        max_size=5,
    ),
)
def test_transitions_keep_every_limit(site: Site, steps: list[tuple[int, int, int]]) -> None:
    alloc = Allocator(site.nodes, site.connectors, TIMING)
    now = 0.0
    old: tuple[list[float], list[int]] | None = None
    for dt, shift, seed in steps:
        now += dt
        current = vary(site, seed, shift)
        out = alloc.allocate(**current.inputs(now))
        setpoint, phases = list(out.setpoint_a), list(out.phases)
        inv.assert_within_caps(current, list(out.target_a), phases)
        inv.assert_within_caps(current, setpoint, phases)
        inv.assert_setpoint_shape(current, setpoint)
        if old is not None:
            inv.assert_transition(current, old[0], old[1], setpoint, phases)
        old = (setpoint, phases)


def coarse_step(site: Site) -> float:
    return max((c.step_a for c in site.connectors), default=0.0)


@CHECKS
@given(sites())
def test_rust_matches_the_reference(site: Site) -> None:
    rust = Allocator(site.nodes, site.connectors, site.settings).allocate(**site.inputs(1000.0))
    ref = ReferenceAllocator(site.nodes, site.connectors, site.settings).allocate(
        **site.inputs(1000.0)
    )
    assert [x > 0 for x in rust.target_a] == [x > 0 for x in ref.target_a]
    assert list(rust.phases) == ref.phases
    for a, b in zip(rust.fair_a, ref.fair_a, strict=True):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-9)
    step = coarse_step(site)
    for a, b in zip(rust.target_a, ref.target_a, strict=True):
        assert abs(a - b) <= step + inv.EPS
    for a, b in zip(rust.setpoint_a, ref.setpoint_a, strict=True):
        assert abs(a - b) <= step + inv.EPS


@CHECKS
@given(
    sites(unbalance=False),
    st.lists(
        st.tuples(st.integers(0, 30), st.integers(0, 40), st.integers(0, 2**62)),
        min_size=1,
        max_size=4,
    ),
)
def test_rust_matches_the_reference_over_cycles(
    site: Site, steps: list[tuple[int, int, int]]
) -> None:
    rust = Allocator(site.nodes, site.connectors, TIMING)
    ref = ReferenceAllocator(site.nodes, site.connectors, TIMING)
    now = 0.0
    for dt, shift, seed in steps:
        now += dt
        current = vary(site, seed, shift)
        a, b = rust.allocate(**current.inputs(now)), ref.allocate(**current.inputs(now))
        step = coarse_step(site)
        for x, y in zip([*a.target_a, *a.setpoint_a], [*b.target_a, *b.setpoint_a], strict=True):
            assert abs(x - y) <= step + inv.EPS


def test_reference_keeps_the_invariants_too() -> None:
    """The reference is held to the same invariants on a fixed scarce hub."""
    from tests.support.allocation_sites import hub

    site = hub(60)
    ref = ReferenceAllocator(site.nodes, site.connectors).allocate(**site.inputs(0.0))
    inv.assert_within_caps(site, ref.target_a, ref.phases)
    inv.assert_setpoint_shape(site, ref.target_a)
    inv.assert_pareto(site, ref.target_a, ref.phases)
    assert not math.isnan(sum(ref.target_a))
