"""The leader lease against three real nats-server processes (replicas 3)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
from nats.aio.client import Client
from nats.js.errors import KeyWrongLastSequenceError

from hubgate.cluster.buckets import open_bucket
from hubgate.cluster.leadership import BUCKET, Leadership
from hubgate.cluster.lease import LeaseTiming, Role, Write
from hubgate.cluster.link import open_nats_link
from hubgate.config.services import Cluster
from tests.support.nats_cluster import NatsCluster

pytestmark = pytest.mark.peers("nats-server")

TIMING = LeaseTiming(ttl_s=1.0, device_lease_s=0.5, clock_margin_s=0.1)


def cluster(node: str, servers: list[str]) -> Cluster:
    return Cluster(site_id="test-site", node=node, servers=tuple(servers))


@asynccontextmanager
async def gateway(
    node: str,
    servers: list[str],
    timing: LeaseTiming = TIMING,
    leads: list[str] | None = None,
    poll_s: float | None = None,
) -> AsyncIterator[Leadership]:
    """A gateway's leadership running on its own NATS connection until the block ends;
    its name appended to `leads` each time it takes the lead (`on_lead`)."""
    told = [] if leads is None else leads
    async with open_nats_link(cluster(node, servers)) as link, trio.open_nursery() as nursery:
        leadership = Leadership(
            link, cluster(node, servers), timing, poll_s=poll_s, on_lead=lambda: told.append(node)
        )
        await nursery.start(leadership.run)
        yield leadership
        nursery.cancel_scope.cancel()


async def test_one_leader_renews_and_a_release_hands_over_at_once(nats: NatsCluster) -> None:
    slow = LeaseTiming(ttl_s=1.0, device_lease_s=10.0, clock_margin_s=0.1)
    leads: list[str] = []
    with trio.fail_after(30):
        async with gateway("a", nats.urls[:1], slow, leads) as a:
            await a.wait_role(Role.LEADER)
            assert leads == ["a"]  # told once it leads (its Modbus masters dial at once)
            async with gateway("b", nats.urls[1:2], slow, leads) as b:
                first = a.epoch()
                assert first is not None
                await trio.sleep(3 * slow.ttl_s)  # several renewals: the lease holds
                assert a.epoch() == first
                assert b.role is Role.STANDBY
                assert await a.release()
                assert a.epoch() is None  # stops commanding at once
                with trio.fail_after(slow.device_lease_s):  # not the lease's expiry
                    await b.wait_role(Role.LEADER)
                second = b.epoch()
                assert leads == ["a", "b"]  # renewals did not tell a again
    assert second is not None
    assert second > first


async def test_a_standby_reads_the_key_as_soon_as_it_is_written(nats: NatsCluster) -> None:
    """A standby that polls the key only every 30 s (and steps again only when the leader
    it last saw would have been silent for its lease, 6.1 s) takes a released lease at
    once: every write of the key wakes its read, so it also sees each renewal as it is
    made."""
    slow = LeaseTiming(ttl_s=6.0, device_lease_s=10.0, clock_margin_s=0.1)
    with trio.fail_after(30):
        async with gateway("a", nats.urls[:1], slow) as a:
            await a.wait_role(Role.LEADER)
            async with gateway("b", nats.urls[1:2], slow, poll_s=30.0) as b:
                await trio.sleep(1.5)  # b read the key as it started
                assert b.role is Role.STANDBY
                assert await a.release()
                with trio.fail_after(3):  # not at its next step, 4.6 s away
                    await b.wait_role(Role.LEADER)


async def test_a_standby_woken_before_the_stream_took_the_write_reads_until_it_has(
    nats: NatsCluster,
) -> None:
    """The subscription hears a write as it is published; the stream takes it once a quorum
    of its replicas has. Here both followers stall while the leader releases, so the
    standby's read after the wake still finds the lease held: it reads again until it finds
    the release, not at its next step 4 s and more away (session 14's one failure of the
    test above, load 1.5-3.5: a read answered before the replicas took the release)."""
    slow = LeaseTiming(ttl_s=6.0, device_lease_s=10.0, clock_margin_s=0.1)
    with trio.fail_after(30):
        async with open_nats_link(cluster("setup", nats.urls)) as link:
            await open_bucket(link, BUCKET, 3, "lease")
            info = await link.run(lambda nc: nc.jetstream().stream_info(f"KV_{BUCKET}"), within_s=5)
        assert info.cluster is not None
        assert info.cluster.leader is not None
        leader = [node.name for node in nats.nodes].index(info.cluster.leader)
        followers = [i for i in range(len(nats.nodes)) if i != leader]
        on_leader = nats.urls[leader : leader + 1]
        async with gateway("a", on_leader, slow) as a:
            await a.wait_role(Role.LEADER)
            async with gateway("b", on_leader, slow, poll_s=30.0) as b, trio.open_nursery() as n:
                await trio.sleep(1.5)  # b read the key as it started
                try:
                    for i in followers:
                        nats.pause_node(i)
                    n.start_soon(a.release)
                    await trio.sleep(0.5)  # b heard the release, and read the key
                    assert b.role is Role.STANDBY
                finally:
                    for i in followers:
                        nats.pause_node(i, paused=False)
                with trio.fail_after(3):
                    await b.wait_role(Role.LEADER)


async def test_a_dead_leader_is_replaced_only_after_lease_and_device_leases(
    nats: NatsCluster,
) -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            a_life = trio.CancelScope()

            async def run_a(*, task_status: trio.TaskStatus[Leadership]) -> None:
                with a_life:
                    async with gateway("a", nats.urls[:1]) as a:
                        task_status.started(a)
                        await trio.sleep_forever()

            a = await nursery.start(run_a)
            await a.wait_role(Role.LEADER)
            async with gateway("b", nats.urls[1:2]) as b:
                await trio.sleep(2 * TIMING.ttl_s)
                assert b.role is Role.STANDBY
                a_life.cancel()  # a's link closes: no renewal, no release
                gone = trio.current_time()
                await b.wait_role(Role.LEADER)
                waited = trio.current_time() - gone
    # the last renewal came at most one renewal period and one read before a went
    assert waited >= TIMING.takeover_after_s - TIMING.renew_every_s - b.poll_s


async def test_a_leader_that_resumes_after_a_take_over_steps_down(nats: NatsCluster) -> None:
    """A hung leader (its lease task stopped, like SIGSTOP) that comes back finds a newer
    epoch: its renewal is refused and it has stopped commanding by its own clock already."""
    with trio.fail_after(30):
        async with open_nats_link(cluster("a", nats.urls)) as link_a:
            a = Leadership(link_a, cluster("a", nats.urls), TIMING)
            async with trio.open_nursery() as hung:
                await hung.start(a.run)
                await a.wait_role(Role.LEADER)
                old = a.epoch()
                hung.cancel_scope.cancel()  # a hangs: no more renewals
            async with gateway("b", nats.urls[1:]) as b:
                await b.wait_role(Role.LEADER)
                new = b.epoch()
                assert a.epoch() is None  # its lease ran out on its clock
                await a.step()  # it resumes: reads the key, sees the newer epoch
                await a.step()
                assert a.role is Role.STANDBY
                await trio.sleep(2 * TIMING.ttl_s)
                assert b.epoch() == new  # it did not fight
    assert old is not None
    assert new is not None
    assert new > old


async def test_a_nats_node_lost_with_both_gateways_alive_keeps_the_leader(
    nats: NatsCluster,
) -> None:
    with trio.fail_after(40):
        async with gateway("a", nats.urls) as a:
            await a.wait_role(Role.LEADER)
            epoch = a.epoch()
            async with gateway("b", nats.urls[::-1]) as b:
                await trio.to_thread.run_sync(nats.stop_node, 2)  # b's first server
                lost_at = trio.current_time()
                lapses = 0
                while trio.current_time() - lost_at < 4 * TIMING.ttl_s:
                    lapses += a.epoch() != epoch
                    assert b.role is Role.STANDBY
                    await trio.sleep(0.05)
    assert lapses == 0


async def test_a_renewal_taken_after_its_wait_ran_out_is_no_lapse(nats: NatsCluster) -> None:
    """The cluster takes a renewal after the leader stopped waiting for its answer (slow
    under load, or while the bucket's stream changes leader): the next renewal, against the
    revision before it, is refused, by the leader's own write. It reads the key, finds its
    renewal and keeps its epoch (it used to step down: a lapse with nobody else there)."""
    with trio.fail_after(30):
        async with gateway("a", nats.urls[:1]) as a:
            await a.wait_role(Role.LEADER)
            epoch = a.epoch()
            update = a._update
            held: list[Write] = []
            refused: list[Write] = []

            async def late(nc: Client, write: Write) -> int:
                if not held and not refused:
                    held.append(write)
                    await asyncio.sleep(3600)  # no answer: the wait runs out
                if held:
                    await update(nc, held.pop())  # taken now, before the next one
                try:
                    return await update(nc, write)
                except KeyWrongLastSequenceError:
                    refused.append(write)
                    raise

            a._update = late  # type: ignore[method-assign]
            watched_from = trio.current_time()
            lapses = 0
            while trio.current_time() - watched_from < 3 * TIMING.ttl_s:
                lapses += a.epoch() != epoch
                await trio.sleep(0.02)
    assert refused  # the case happened
    assert lapses == 0


async def test_a_release_while_a_renewal_is_in_flight_goes_out_after_it(nats: NatsCluster) -> None:
    """SIGTERM comes while a renewal waits for its answer: the release goes out once the
    renewal is answered, against the revision it made, and the standby takes over at once
    (it used to go against the revision before: refused by the renewal, the hand-over lost,
    and the renewal's answer made the releasing gateway lead again)."""
    slow = LeaseTiming(ttl_s=1.0, device_lease_s=10.0, clock_margin_s=0.1)
    with trio.fail_after(30):
        async with gateway("a", nats.urls[:1], slow) as a:
            await a.wait_role(Role.LEADER)
            async with gateway("b", nats.urls[1:2], slow) as b:
                await trio.sleep(slow.ttl_s)  # b has read the key
                update = a._update
                in_flight = trio.Event()
                token = trio.lowlevel.current_trio_token()

                async def slow_answer(nc: Client, write: Write) -> int:
                    revision = await update(nc, write)
                    if not write.record.released and not in_flight.is_set():
                        token.run_sync_soon(in_flight.set)
                        await asyncio.sleep(slow.renew_every_s / 4)  # answered late
                    return revision

                a._update = slow_answer  # type: ignore[method-assign]
                await in_flight.wait()
                assert await a.release()
                assert a.epoch() is None
                with trio.fail_after(slow.device_lease_s):  # not the lease's expiry
                    await b.wait_role(Role.LEADER)
                await trio.sleep(slow.ttl_s)
                assert a.epoch() is None  # the renewal's answer did not make it lead again
                assert b.role is Role.LEADER
