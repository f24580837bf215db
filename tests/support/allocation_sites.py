"""Synthetic sites for allocation tests and benchmarks: random trees, and the 4-level hub
(`hub`, from `hubgate.benchmarking.hub_site`, which `hubgate bench` times too)."""

from __future__ import annotations

import math

from hypothesis import strategies as st

from hubgate._core import AllocConnector, AllocNode
from hubgate.benchmarking.hub_site import Site, hub

__all__ = ["Site", "hub", "sites"]

INF = math.inf


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
