"""A gateway's bucket mirror (`cluster.kv_mirror`) keeps following when the NATS node its
watch's consumer lives on is lost, against three real nats-server processes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
from nats.aio.client import Client

from hubgate.cluster.buckets import open_bucket
from hubgate.cluster.kv_mirror import KvMirror
from hubgate.cluster.link import NatsLink, open_nats_link
from hubgate.config.services import Cluster
from tests.support.nats_cluster import NatsCluster
from tests.support.wait import wait_until

pytestmark = [pytest.mark.peers("nats-server"), pytest.mark.timeout(90)]

BUCKET = "hubgate_test_mirror"
STREAM = f"KV_{BUCKET}"

CAUGHT_UP_S = 8.0
"""How soon after the node is lost the change must be there: two missed heartbeats, a
new consumer and the message, with room for a NATS meta-leader election. nats-py's own
`KeyValue.watch` (5 s heartbeats) takes 10 to 20 s."""


def cluster(node: str, server: str) -> Cluster:
    return Cluster(site_id="test-site", node=node, servers=(server,))


@asynccontextmanager
async def follower(
    link: NatsLink, link_cluster: Cluster, seen: dict[str, bytes | None]
) -> AsyncIterator[None]:
    """Gateway b's mirror of the bucket, each entry put into `seen`, until the block ends."""

    async def apply(key: str, value: bytes | None) -> None:
        seen[key] = value

    async with trio.open_nursery() as nursery:
        await nursery.start(KvMirror(link, link_cluster, BUCKET, "test", apply).run)
        yield
        nursery.cancel_scope.cancel()


async def hosts(link: NatsLink) -> tuple[dict[str, str], str]:
    """Each consumer of the bucket's stream with the node it lives on; the stream's leader."""

    async def ask(nc: Client) -> tuple[dict[str, str], str]:
        js = nc.jsm()
        consumers = await js.consumers_info(STREAM)
        stream = await js.stream_info(STREAM)
        assert stream.cluster is not None
        return (
            {c.name: c.cluster.leader for c in consumers if c.cluster and c.cluster.leader},
            str(stream.cluster.leader),
        )

    return await link.run(ask, within_s=2.0)


async def test_a_change_reaches_a_follower_whose_consumer_node_was_lost(
    nats: NatsCluster,
) -> None:
    """b follows the bucket through node n2; the node its watch's consumer lives on (not the
    stream's leader, so writes go on at once) is stopped; a change written then reaches b
    within `CAUGHT_UP_S`."""
    seen: dict[str, bytes | None] = {}
    names = [node.name for node in nats.nodes]
    with trio.fail_after(70):
        async with (
            open_nats_link(cluster("admin", nats.urls[1])) as admin,
            open_nats_link(b_cluster := cluster("b", nats.urls[1])) as b,
        ):
            kv = await open_bucket(admin, BUCKET, 3, "test")
            await admin.run(lambda nc: kv.put("test-site.first", b"1"), within_s=2.0)
            for _ in range(30):  # a consumer goes on a node at random: until it is one to stop
                before, _leader = await hosts(admin)
                async with follower(b, b_cluster, seen):
                    await wait_until(lambda: seen.get("test-site.first") == b"1", "the first")
                    now, leader = await hosts(admin)
                    host = next(h for name, h in now.items() if name not in before)
                    if host in (names[1], leader):
                        continue
                    nats.stop_node(names.index(host))
                    await admin.run(lambda nc: kv.put("test-site.second", b"2"), within_s=2.0)
                    await wait_until(
                        lambda: seen.get("test-site.second") == b"2",
                        f"the change after {host} was lost",
                        timeout_s=CAUGHT_UP_S,
                    )
                    return
            raise AssertionError("the follower's consumer never went on a node to stop")
