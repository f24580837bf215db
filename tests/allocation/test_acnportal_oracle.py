"""acnportal's RoundRobin as an independent oracle of the fairness core.

acnportal 0.3.3 (Caltech ACN) RoundRobin is discrete progressive filling: it
raises every EV by one increment in turn and drops an EV the first time its
increment is infeasible (allocation.md §2.3-2.5). On the networks it can
express (one-phase EVSEs on wye phases, per-phase limits per node, no minimum
current, no pause) the water-filling core must agree within one increment.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from acnportal.algorithms import RoundRobin, first_come_first_served
from acnportal.algorithms.tests import testing_interface
from hypothesis import given, settings
from hypothesis import strategies as st

from hubgate._core import Allocator, AllocConnector, AllocNode

STEP = 0.1
ANGLES = (0.0, -120.0, 120.0)


@st.composite
def wye_networks(draw: st.DrawFn) -> tuple[list[AllocNode], list[AllocConnector]]:
    """A root and feeders with per-phase caps; one-phase EVSEs on rotated phases."""
    feeders = draw(st.integers(1, 4))
    cap = st.sampled_from([16.0, 32.0, 48.0, 80.0, 120.0])
    nodes = [AllocNode(None, (draw(cap), draw(cap), draw(cap)))]
    nodes += [AllocNode(0, (draw(cap), draw(cap), draw(cap))) for _ in range(feeders)]
    count = draw(st.integers(1, 30))
    evses = [
        AllocConnector(
            draw(st.integers(0, feeders)),
            "1p",
            draw(st.integers(0, 2)),
            STEP,
            draw(st.sampled_from([16.0, 32.0])),
            STEP,
        )
        for _ in range(count)
    ]
    return nodes, evses


def round_robin(nodes: list[AllocNode], evses: list[AllocConnector]) -> list[float]:
    """acnportal RoundRobin(continuous_inc=STEP) on the same network."""
    n = len(evses)
    rows, limits, ids = [], [], []
    for node_index, node in enumerate(nodes):
        for p in range(3):
            members = [
                1.0 if e.phase == p and (e.node == node_index or node_index == 0) else 0.0
                for e in evses
            ]
            if any(members):
                rows.append(members)
                limits.append(node.phase_cap_a[p])
                ids.append(f"node{node_index}-L{p + 1}")
    infrastructure = {
        "constraint_matrix": np.array(rows),
        "constraint_limits": np.array(limits),
        "phases": np.array([ANGLES[e.phase] for e in evses]),
        "voltages": np.repeat(230.0, n),
        "constraint_ids": ids,
        "station_ids": [f"evse-{i}" for i in range(n)],
        "max_pilot": np.array([e.max_a for e in evses]),
        "min_pilot": np.zeros(n),
        "allowable_pilots": [np.array([0.0, e.max_a]) for e in evses],
        "is_continuous": np.ones(n, dtype=bool),
    }
    sessions = [
        {
            "station_id": f"evse-{i}",
            "session_id": f"s{i}",
            "requested_energy": 1e6,
            "energy_delivered": 0.0,
            "arrival": 0,
            "departure": 1_000,
            "estimated_departure": 1_000,
            "min_rates": 0.0,
            "max_rates": e.max_a,
        }
        for i, e in enumerate(evses)
    ]
    interface = testing_interface.TestingInterface(
        {
            "active_sessions": sessions,
            "infrastructure_info": infrastructure,
            "current_time": 0,
            "period": 5,
        }
    )
    algorithm = RoundRobin(first_come_first_served, continuous_inc=STEP)
    algorithm.register_interface(interface)
    schedule = algorithm.schedule(interface.active_sessions())
    return [schedule[f"evse-{i}"][0] for i in range(n)]


@settings(max_examples=25, deadline=None)
@given(wye_networks())
def test_water_filling_matches_round_robin_within_one_increment(
    network: tuple[list[AllocNode], list[AllocConnector]],
) -> None:
    nodes, evses = network
    ours = Allocator(nodes, evses).allocate(
        0.0, [0.0] * (3 * len(nodes)), [math.inf] * len(evses), [1] * len(evses)
    )
    theirs = round_robin(nodes, evses)
    for i, (a, b) in enumerate(zip(ours.target_a, theirs, strict=True)):
        assert a == pytest.approx(b, abs=STEP + 1e-6), f"EVSE {i}: hubgate {a}, RoundRobin {b}"
