"""Cluster figures (docs/ha.md): the cost of calling nats-py from Trio through `NatsLink`,
against nats-py on its own asyncio loop, both over a real nats-server on loopback.

Each round: connect, then 500 round trips to the server (a PING/PONG flush) one after the
other; `us_per_call` is the mean round trip after connecting, the bridge's added latency is
the difference between the two `impl`s' figures (median over the rounds).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
import trio

from hubgate.cluster.link import open_nats_link
from hubgate.config.model import Cluster

CALLS = 500


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "cluster"))
    from nats_cluster import NatsCluster

    cluster = NatsCluster.start(tmp_path_factory.mktemp("nats"), size=1)
    try:
        yield cluster.urls[0]
    finally:
        cluster.close()


async def _through_the_bridge(url: str) -> float:
    cluster = Cluster(site_id="bench", node="bench", servers=(url,), replicas=1)
    async with open_nats_link(cluster) as link:
        await link.wait_connected()
        began = time.perf_counter()
        for _ in range(CALLS):
            await link.run(lambda nc: nc.flush(timeout=2))
        return (time.perf_counter() - began) / CALLS


async def _on_asyncio(url: str) -> float:
    client = await nats.connect(servers=[url])
    try:
        began = time.perf_counter()
        for _ in range(CALLS):
            await client.flush(timeout=2)
        return (time.perf_counter() - began) / CALLS
    finally:
        await client.close()


@pytest.mark.benchmark(group="nats-round-trip")
@pytest.mark.parametrize("impl", ["hubgate", "nats-py"])
def test_nats_round_trip_from_trio(benchmark: Any, server: str, impl: str) -> None:
    per_call: list[float] = []

    def run() -> None:
        if impl == "hubgate":
            per_call.append(trio.run(_through_the_bridge, server))
        else:
            per_call.append(asyncio.run(_on_asyncio(server)))

    benchmark.pedantic(run, rounds=5, iterations=1)
    benchmark.extra_info["us_per_call"] = round(statistics.median(per_call) * 1e6, 1)
    assert min(per_call) > 0
