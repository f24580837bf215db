"""The failsafe share on random sites: the chargers take their new failsafes in any order
and hubgate may stop between two, so each falls back to its old value (`may_hold_a`) or
its new grant. Wherever an increase is granted, every order fits: on each node and phase
the sum of max(grant, may_hold) is within the room. A decrease is never held back."""

from __future__ import annotations

import math
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from hubgate._core import ConnectorPaths

TOLERANCE_A = 1e-6

Share = tuple[
    int,
    list[tuple[int, ...]],
    list[tuple[int, ...]],
    list[float],
    list[bool],
    list[bool],
    list[float],
    list[float],
]
"""A drawn case: node count, connector paths and phases, fixed failsafes, session, holds,
what each may fall back to now, room per node and phase."""

PHASE_SETS = [(0, 1, 2), (0,), (1,), (2,)]


@st.composite
def shares(draw: st.DrawFn) -> Share:
    """A random tree, connectors on it (paths, phases, fixed failsafes, session, holds, what
    each may fall back to now) and the room per node and phase."""
    n_nodes = draw(st.integers(1, 4))
    parents: list[int | None] = [None] + [draw(st.integers(0, k - 1)) for k in range(1, n_nodes)]

    def path(node: int) -> tuple[int, ...]:
        up = [node]
        while (parent := parents[up[-1]]) is not None:
            up.append(parent)
        return tuple(up)

    n = draw(st.integers(1, 8))
    paths = [path(draw(st.integers(0, n_nodes - 1))) for _ in range(n)]
    phases = [draw(st.sampled_from(PHASE_SETS)) for _ in range(n)]
    fixed = [draw(st.sampled_from([math.nan] * 3 + [0.0, 6.0, 8.0])) for _ in range(n)]
    session = [draw(st.booleans()) for _ in range(n)]
    holds = [draw(st.booleans()) for _ in range(n)]
    may_hold = [draw(st.sampled_from([0.0, 6.0])) if math.isnan(f) else f for f in fixed]
    room = [float(draw(st.integers(0, 30))) for _ in range(3 * n_nodes)]
    return n_nodes, paths, phases, fixed, session, holds, may_hold, room


def _per_node(
    n_nodes: int,
    paths: Sequence[tuple[int, ...]],
    phases: Sequence[tuple[int, ...]],
    a: Sequence[float],
) -> list[float]:
    summed = [0.0] * (3 * n_nodes)
    for i, (path, on) in enumerate(zip(paths, phases, strict=True)):
        for node in path:
            for p in on:
                summed[3 * node + p] += a[i]
    return summed


@settings(max_examples=300, deadline=None)
@given(shares())
def test_wherever_an_increase_is_granted_every_landing_order_fits(case: Share) -> None:
    n_nodes, paths, phases, fixed, session, holds, may_hold, room = case
    connector_paths = ConnectorPaths(n_nodes, paths, phases)
    granted = list(connector_paths.share_failsafe(fixed, session, holds, may_hold, list(room), 6.0))
    worst = _per_node(
        n_nodes, paths, phases, [max(g, m) for g, m in zip(granted, may_hold, strict=True)]
    )
    raised = [g > m + TOLERANCE_A for g, m in zip(granted, may_hold, strict=True)]
    for node in range(n_nodes):
        for p in range(3):
            if any(raised[i] and node in paths[i] and p in phases[i] for i in range(len(paths))):
                assert worst[3 * node + p] <= room[3 * node + p] + TOLERANCE_A, (node, p, granted)
    # what each is to hold is shared as if all held nothing now; only increases wait
    unheld = [0.0] * len(paths)
    wanted = list(connector_paths.share_failsafe(fixed, session, holds, unheld, list(room), 6.0))
    for g, w, m in zip(granted, wanted, may_hold, strict=True):
        assert g == w or (g == 0.0 and w > m), (granted, wanted, may_hold)
