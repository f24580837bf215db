"""The store-and-forward queue replicated in a JetStream stream (three real nats-server
processes, replicas 3): two gateways' stores kept equal, replay continued by the other."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.lowlevel

from hubgate.cloud.authlist import LocalListUpdate
from hubgate.cloud.errors import CsmsCallError
from hubgate.cloud.queue import DurableQueue, open_durable_queue
from hubgate.cloud.store import (
    AuthRecord,
    AuthSource,
    ListUpdateStatus,
    Outgoing,
    QueuedMessage,
    Store,
)
from hubgate.cloud.store_changes import cache_cleared, cached, discarded, local_list, released
from hubgate.cluster.link import open_nats_link
from hubgate.cluster.queue_replica import QueueReplica
from hubgate.config.services import Cluster
from tests.support.nats_cluster import NatsCluster

pytestmark = [pytest.mark.peers("nats-server"), pytest.mark.timeout(90)]

CHARGERS = ("CP-1", "CP-2", "CP-3")


@asynccontextmanager
async def gateway(node: str, servers: list[str], path: Path) -> AsyncIterator[DurableQueue]:
    """A gateway's durable queue with its replica following the stream."""
    cluster = Cluster(site_id="q-test", node=node, servers=tuple(servers))
    async with open_nats_link(cluster) as link:
        replica = QueueReplica(link, cluster)
        async with open_durable_queue(path, replica=replica) as queue, trio.open_nursery() as n:
            await n.start(replica.follow, queue.run)
            yield queue
            n.cancel_scope.cancel()


def message(charger: str, n: int) -> Outgoing:
    payload = {"connectorId": 1, "transactionId": 7, "meterValue": [{"n": n}]}
    return Outgoing(charger, f"m{n}", "MeterValues", payload)


async def pending(queue: DurableQueue, charger: str) -> list[str]:
    rows = await queue.run(functools.partial(Store.pending, charge_point=charger, limit=10_000))
    return [m.message_id for m in rows]


async def test_both_stores_follow_the_stream_and_replay_goes_on_after_a_change_of_leader(
    nats: NatsCluster, tmp_path: Path
) -> None:
    sent: list[tuple[str, str]] = []

    async def csms(message: QueuedMessage) -> dict[str, Any]:
        sent.append((message.charge_point, message.message_id))
        return {}

    with trio.fail_after(60):
        async with gateway("a", nats.urls[:1], tmp_path / "a.sqlite3") as a:
            async with gateway("b", nats.urls[1:2], tmp_path / "b.sqlite3") as b:
                async with trio.open_nursery() as chargers:
                    for charger in CHARGERS:  # concurrent chargers: group commits
                        for n in range(100):
                            chargers.start_soon(a.enqueue, message(charger, n))
                            await trio.lowlevel.checkpoint()
                receipt = await a.enqueue(message("CP-1", 5))  # a charger repeats a Call
                assert receipt.seq > 0
                await b.replica.caught_up()  # type: ignore[union-attr]
                for charger in CHARGERS:
                    pb, pa = await pending(b, charger), await pending(a, charger)
                    assert pb == pa, (
                        charger,
                        set(pb) ^ set(pa),
                        a.replica.position,
                        b.replica.position,
                    )
                    assert len(await pending(b, charger)) == 100

                async def until_cut(message: QueuedMessage) -> dict[str, Any]:
                    if len(sent) == 40:
                        raise ConnectionError("the leader dies")
                    return await csms(message)

                with pytest.raises(ConnectionError):
                    await a.replay("CP-1", until_cut)
            # b was stopped and is back, a is gone: b catches up and replays the rest
            async with gateway("b", nats.urls[1:2], tmp_path / "b.sqlite3") as b:
                await b.replica.caught_up()  # type: ignore[union-attr]
                assert len(await pending(b, "CP-1")) == 60
                for charger in CHARGERS:
                    await b.replay(charger, csms)
                assert await b.run(lambda s: s.pending_count()) == 0
    for charger in CHARGERS:
        order = [int(m[1:]) for c, m in sent if c == charger]
        assert order == sorted(order)
        assert len(order) == len(set(order)) == 100  # each once


async def test_the_local_list_and_decisions_on_held_transactions_reach_the_other_store(
    nats: NatsCluster, tmp_path: Path
) -> None:
    """What the CSMS's SendLocalList gave the leader is the standby's list too (a new
    leader answers Authorize offline from it), VersionMismatch included, and so is what
    the CSMS answered to an Authorize (the cache) until a ClearCache; an operator's
    release of a held transaction on one gateway is made on the other's copy; a refused
    decision raises where it was asked and changes nothing anywhere."""
    accepted = AuthRecord("TAG-1", "Accepted", None, {"status": "Accepted"})
    blocked = AuthRecord("TAG-2", "Blocked", None, {"status": "Blocked"})

    async def refuse_starts(message: QueuedMessage) -> dict[str, Any]:
        if message.action == "StartTransaction":
            raise CsmsCallError("SecurityError", "not this one")
        return {}

    async def authorize(queue: DurableQueue, key: str) -> AuthSource | None:
        found = await queue.run(lambda s: s.authorize("CP-1", key, now=0.0))
        return None if found is None else found.source

    with trio.fail_after(60):
        async with (
            gateway("a", nats.urls[:1], tmp_path / "a.sqlite3") as a,
            gateway("b", nats.urls[1:2], tmp_path / "b.sqlite3") as b,
        ):
            full = LocalListUpdate(3, True, [("TAG-1", accepted), ("TAG-2", blocked)])
            assert await a.change(local_list("CP-1", full)) == ListUpdateStatus.ACCEPTED
            older = LocalListUpdate(2, False, [("TAG-2", None)])
            assert await a.change(local_list("CP-1", older)) == ListUpdateStatus.VERSION_MISMATCH
            seen = AuthRecord("TAG-3", "Accepted", None, {"status": "Accepted"})
            await a.remember(cached("CP-1", seen, at=1.0))
            await b.replica.caught_up()  # type: ignore[union-attr]
            assert await authorize(b, "TAG-3") == AuthSource.CACHE
            await a.change(cache_cleared("CP-1"))
            await b.replica.caught_up()  # type: ignore[union-attr]
            assert await authorize(b, "TAG-3") is None
            assert await b.run(lambda s: s.local_list_version("CP-1")) == 3
            assert await authorize(b, "TAG-1") == AuthSource.LOCAL_LIST
            assert await authorize(b, "TAG-2") == AuthSource.LOCAL_LIST  # not removed

            start = Outgoing("CP-9", "s", "StartTransaction", {}, issue_transaction_id=True)
            await a.enqueue(start)
            await a.enqueue(Outgoing("CP-9", "mv", "MeterValues", {"transactionId": -1}))
            await a.replay("CP-9", refuse_starts)
            await b.replica.caught_up()  # type: ignore[union-attr]
            (hold,) = await b.run(Store.holds)
            assert hold.transaction == "-1"
            with pytest.raises(ValueError, match="the CSMS gave no transaction id"):
                await b.change(released("CP-9", "-1", None))
            with pytest.raises(KeyError):
                await b.change(discarded("CP-9", "-2"))
            released_hold = await b.change(released("CP-9", "-1", 77))
            assert released_hold == hold
            await a.replica.caught_up()  # type: ignore[union-attr]
            assert await a.run(Store.holds) == []
            queued = await a.run(functools.partial(Store.pending, charge_point="CP-9"))
            assert [(m.message_id, m.payload["transactionId"]) for m in queued] == [("mv", 77)]


async def test_a_charger_mid_message_when_the_gateway_stops_is_left_unanswered(
    nats: NatsCluster, tmp_path: Path
) -> None:
    """The gateway stops while a charger's message waits for the local copy: the follower
    and the charger's handler are cancelled by the same stop, and the handler ends
    cancelled (no answer: the charger sends the message again to whichever gateway
    leads), not failed after the wait for a follower that is gone (an ERROR traceback
    in every standby's log that stopped with a charger mid-message)."""
    cluster = Cluster(site_id="q-stop", node="a", servers=(nats.urls[0],))
    ended: list[type[BaseException]] = []
    held, fetched = False, trio.Event()

    async def charger(queue: DurableQueue) -> None:
        try:
            await queue.enqueue(message("CP-1", 1))
        except BaseException as exc:
            ended.append(type(exc))
            raise

    with trio.fail_after(30):
        async with open_nats_link(cluster) as link:
            replica = QueueReplica(link, cluster)
            async with (
                open_durable_queue(tmp_path / "a.sqlite3", replica=replica) as queue,
                trio.open_nursery() as gateway,
            ):

                async def follower_run(operation: Any) -> Any:
                    if held:  # the message is on the stream; its copy is held back
                        fetched.set()
                        await trio.sleep_forever()
                    return await queue.run(operation)

                await gateway.start(replica.follow, follower_run)
                await queue.enqueue(message("CP-1", 0))  # the stream is there
                held = True
                gateway.start_soon(charger, queue)
                await fetched.wait()  # the charger waits for the local copy
                gateway.cancel_scope.cancel()  # the stop
    assert ended == [trio.Cancelled]
