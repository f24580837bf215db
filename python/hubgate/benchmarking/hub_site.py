"""A synthetic 4-level hub for allocation speed: the allocator's benchmark and test site.

`hub(n)` is the site `bench/test_bench_allocation.py` and `hubgate bench` time,
and the allocation tests check; it lives here so that `hubgate bench` runs
without the test suite.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

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
