"""Operator and CSMS limits set on one gateway reach the other (`cluster.limit_replica`),
against three real nats-server processes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio

from hubgate.cluster.limit_replica import LimitReplica
from hubgate.cluster.link import open_nats_link
from hubgate.config.services import Cluster
from hubgate.control.limits import SITE, Limit, LimitBook, LimitSource, connector_target
from tests.support.nats_cluster import NatsCluster
from tests.support.wait import wait_until

pytestmark = [pytest.mark.peers("nats-server"), pytest.mark.timeout(60)]


@asynccontextmanager
async def gateway(node: str, server: str) -> AsyncIterator[LimitBook]:
    """A gateway's limit book, replicated on its own NATS connection until the block ends."""
    cluster = Cluster(site_id="test-site", node=node, servers=(server,))
    book = LimitBook()
    async with open_nats_link(cluster) as link, trio.open_nursery() as nursery:
        await nursery.start(LimitReplica(link, cluster, book).run)
        yield book
        nursery.cancel_scope.cancel()


def in_force(book: LimitBook, target: str = SITE) -> Limit:
    return book.in_force(target, trio.current_time()).limit


async def test_leases_set_and_cleared_on_one_gateway_are_in_force_on_the_other(
    nats: NatsCluster,
) -> None:
    cap = Limit(phase_a=(40.0, 40.0, 40.0))
    csms = Limit(power_kw=22.0)
    connector = connector_target("cp-1", 1)
    with trio.fail_after(40):
        async with gateway("a", nats.urls[0]) as a, gateway("b", nats.urls[1]) as b:
            now = trio.current_time()
            a.set(SITE, LimitSource.API, cap, now=now, lease_s=None, origin="operator")
            a.set(connector, LimitSource.CSMS, csms, now=now, lease_s=3.0, origin="csms")
            a.set(SITE, LimitSource.FLEET, Limit(power_kw=1.0), now=now, lease_s=60, origin="x")
            await wait_until(lambda: in_force(b) == cap, "the operator's cap on b")
            await wait_until(lambda: in_force(b, connector) == csms, "the CSMS limit on b")
            assert b.lease(SITE, LimitSource.FLEET) is None  # both take the fleet's themselves
            lease = b.lease(connector, LimitSource.CSMS)
            assert lease is not None
            assert lease.origin == "csms"
            assert lease.expires_at is not None
            assert lease.expires_at - trio.current_time() <= 3.0  # ends when a's ends
            await trio.sleep(3.5)
            assert in_force(b, connector) == Limit()  # expired on b's own clock
            b.clear(SITE, LimitSource.API, now=trio.current_time(), origin="operator")
            await wait_until(
                lambda: a.lease(SITE, LimitSource.API) is None, "the cap cleared on a as well"
            )
        tighter = Limit(phase_a=(32.0, 32.0, 32.0))
        async with gateway("a", nats.urls[0]) as a:
            a.set(
                SITE,
                LimitSource.MODBUS_SERVER,
                tighter,
                now=trio.current_time(),
                lease_s=None,
                origin="plc",
            )
            async with gateway("b", nats.urls[2]) as b:  # b restarted: starts with it
                assert in_force(b) == tighter
                assert b.lease(SITE, LimitSource.API) is None  # cleared for good
