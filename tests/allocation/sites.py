"""Synthetic sites for allocation tests and benchmarks: random trees and a 4-level hub."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from hypothesis import strategies as st

from hubgate._core import AllocConnector, AllocNode, AllocSettings

INF = math.inf


@dataclass
class Site:
    """A topology plus one cycle's inputs, as plain lists."""

    nodes: list[AllocNode]
    connectors: list[AllocConnector]
    base: list[float]
    ev_max: list[float]
    wanting: list[int]
    pv: list[int]
    gop: float = INF
    peak: float = INF
    pv_budget: float = INF
    settings: AllocSettings = field(default_factory=AllocSettings)

    def inputs(self, now: float) -> dict[str, object]:
        return {
            "now": now,
            "base_load_a": self.base,
            "ev_max_a": self.ev_max,
            "wanting": self.wanting,
            "pv_mode": self.pv,
            "grid_operator_w": self.gop,
            "peak_w": self.peak,
            "pv_budget_w": self.pv_budget,
        }


def _cap() -> st.SearchStrategy[float]:
    return st.one_of(st.just(INF), st.integers(4, 40).map(lambda v: v * 5.0))


@st.composite
def sites(
    draw: st.DrawFn, max_nodes: int = 6, max_connectors: int = 20, unbalance: bool = True
) -> Site:
    """A random tree (parents before children) with random connectors and inputs."""
    n = draw(st.integers(1, max_nodes))
    nodes = []
    for i in range(n):
        parent = None if i == 0 else draw(st.integers(0, i - 1))
        caps = (draw(_cap()), draw(_cap()), draw(_cap()))
        power = draw(st.one_of(st.just(INF), st.integers(5, 100).map(lambda kw: kw * 1000.0)))
        ub = draw(st.one_of(st.just(INF), st.integers(2, 30).map(float))) if unbalance else INF
        nodes.append(AllocNode(parent, caps, power, ub))
    count = draw(st.integers(0, max_connectors))
    connectors = [
        AllocConnector(
            draw(st.integers(0, n - 1)),
            draw(st.sampled_from(["1p", "3p", "switchable"])),
            draw(st.integers(0, 2)),
            draw(st.sampled_from([6.0, 8.0])),
            draw(st.sampled_from([16.0, 20.5, 32.0])),
            draw(st.sampled_from([0.1, 0.5, 1.0])),
            draw(st.sampled_from([0.5, 1.0, 2.0])),
            draw(st.integers(0, 2)),
        )
        for _ in range(count)
    ]
    kw = st.integers(0, 60).map(lambda v: v * 1000.0)
    return Site(
        nodes=nodes,
        connectors=connectors,
        base=[draw(st.integers(0, 40)) * 0.5 for _ in range(3 * n)],
        ev_max=[draw(st.one_of(st.just(INF), st.integers(0, 40).map(float))) for _ in range(count)],
        wanting=[draw(st.sampled_from([1, 1, 1, 1, 0])) for _ in range(count)],
        pv=[draw(st.sampled_from([0, 0, 0, 0, 1])) for _ in range(count)],
        gop=draw(st.one_of(st.just(INF), st.just(INF), kw)),
        peak=draw(st.one_of(st.just(INF), st.just(INF), kw)),
        pv_budget=draw(st.one_of(st.just(INF), st.integers(0, 30).map(lambda v: v * 1000.0))),
    )


def hub(connectors: int, seed: int = 1) -> Site:
    """A 4-level hub: grid, transformers, feeders, chargers with 2 connectors each.

    Mixed 60 % three-phase and 40 % one-phase connectors on rotated phases, power
    limits on the grid and transformers, a scarcity that pauses some connectors.
    """
    rng = random.Random(seed)
    chargers = (connectors + 1) // 2
    feeders = max(1, chargers // 10)
    transformers = max(1, feeders // 10)
    nodes = [AllocNode(None, (9.0 * connectors,) * 3, 230.0 * 3 * 9 * connectors, INF)]
    for _ in range(transformers):
        nodes.append(
            AllocNode(
                0, (12.0 * connectors / transformers,) * 3, 230 * 3 * 7 * connectors / transformers
            )
        )
    for f in range(feeders):
        nodes.append(AllocNode(1 + f % transformers, (250.0, 250.0, 250.0)))
    first_charger = len(nodes)
    for c in range(chargers):
        nodes.append(AllocNode(1 + transformers + c % feeders, (48.0, 48.0, 48.0)))
    conns = []
    for i in range(connectors):
        kind = "3p" if rng.random() < 0.6 else rng.choice(["1p", "1p", "switchable"])
        conns.append(
            AllocConnector(
                first_charger + i // 2,
                kind,
                rng.randrange(3),
                6.0,
                rng.choice([16.0, 32.0]),
                rng.choice([0.1, 1.0]),
                1.0,
                rng.choice([0, 0, 1, 2]),
            )
        )
    base = [0.0] * (3 * len(nodes))
    for n in range(1, 1 + transformers):
        for p in range(3):
            base[3 * n + p] = rng.uniform(0, 20)
    return Site(
        nodes=nodes,
        connectors=conns,
        base=base,
        ev_max=[rng.choice([INF, INF, INF, 12.0]) for _ in range(connectors)],
        wanting=[1 if rng.random() < 0.9 else 0 for _ in range(connectors)],
        pv=[0] * connectors,
        gop=230.0 * 3 * 6.5 * connectors,
    )
