"""What a message is: a charger whose message ids start again after each reconnect loses
nothing and gets the right transaction ids; reconnects during replay repeat nothing."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import trio

from hubgate.ocpp.versions import OcppVersion
from tests.support.charge_points import ChargePointThread
from tests.support.csms import CsmsThread
from tests.support.proxy import FLEET, check_replayed, open_proxied, outage_script, transaction16

V16 = OcppVersion.V16


async def _transaction(cp: ChargePointThread, meter: int) -> int:
    """Start, MeterValues, Stop with message ids "1", "2", "3": what a charger that
    numbers its messages from 1 on each connection sends. Returns its transaction id."""
    ids = ("1", "2", "3")
    return await trio.to_thread.run_sync(lambda: transaction16(cp, ids, meter=meter))


def _check_transactions(csms: CsmsThread, frames: list[list[Any]], meters: list[int]) -> None:
    """Each transaction reached the CSMS once, in order, its messages under its own
    CSMS transaction id, every message under its own message id."""
    assert [f[2] for f in frames] == ["StartTransaction", "MeterValues", "StopTransaction"] * len(
        meters
    )
    assert [f[3]["meterStart"] for f in frames[::3]] == meters
    assert len({f[1] for f in frames}) == len(frames)
    csms_ids = []
    for start, values, stop in zip(frames[::3], frames[1::3], frames[2::3], strict=True):
        csms_id = csms.transaction_id("CP16", start[1])
        assert values[3]["transactionId"] == stop[3]["transactionId"] == csms_id
        csms_ids.append(csms_id)
    assert len(set(csms_ids)) == len(meters)


async def test_ids_restarting_per_connection_offline_lose_nothing(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_proxied(tmp_path, csms_up=False) as env:
            local_ids = []
            for connection in range(3):
                cp = await env.connect("CP16", V16)
                local_ids.append(await _transaction(cp, 1000 * connection))
                await trio.to_thread.run_sync(cp.stop)
            assert local_ids == [-1, -2, -3]  # each transaction its own local id
            assert await env.proxy.queue.run(lambda s: s.pending_count()) == 9

            await env.start_csms()
            cp = await env.connect("CP16", V16)  # replayed once the charger is back
            await trio.to_thread.run_sync(env.csms.wait_calls, 9, 10, {"CP16"})
            frames = env.csms.calls("CP16")
            _check_transactions(env.csms, frames, [0, 1000, 2000])
            assert [f[1] for f in frames[:3]] == ["1", "2", "3"]  # the charger's own ids first
            await trio.to_thread.run_sync(cp.stop)


async def test_an_id_used_by_replay_is_not_reused_live_on_the_same_link(tmp_path: Path) -> None:
    """The charger's ids "1".."3" of its last connection are replayed on the new one's
    link, then the charger sends "1".."3" again: the CSMS must not take them for repeats."""
    with trio.fail_after(30):
        async with open_proxied(tmp_path, csms_up=False) as env:
            cp = await env.connect("CP16", V16)
            assert await _transaction(cp, 0) == -1
            await trio.to_thread.run_sync(cp.stop)
            await env.start_csms()
            cp = await env.connect("CP16", V16)
            await trio.to_thread.run_sync(env.csms.wait_calls, 3, 10, {"CP16"})
            await env.drained("CP16")
            second = await _transaction(cp, 1000)  # online: the CSMS's answer
            frames = env.csms.calls("CP16")
            _check_transactions(env.csms, frames, [0, 1000])
            assert second == env.csms.transaction_id("CP16", frames[3][1])
            await trio.to_thread.run_sync(cp.stop)


@pytest.mark.timeout(120)  # after the deadline below, so that Trio ends the test cleanly
async def test_reconnects_during_replay_repeat_no_message(tmp_path: Path) -> None:
    """Chargers drop and come back over and over while their backlog replays to a CSMS
    that takes 5 ms per call: each message reaches it exactly once, in order."""
    chargers = FLEET[:4]
    csms = CsmsThread(accepted={"TAG-OK"}, delay_s=0.005)
    rng = random.Random(19)
    reconnects = 0
    with trio.fail_after(90):
        async with open_proxied(tmp_path, csms_up=False, csms=csms) as env:
            peers = {a.identity: await env.connect(a.identity, V16) for a in chargers}
            expected: dict[str, list[str]] = {}
            base = datetime(2026, 11, 1, tzinfo=UTC)

            async def outage(peer: ChargePointThread) -> None:
                expected[peer.identity] = await trio.to_thread.run_sync(
                    outage_script, peer, 20, base, abandon_on_cancel=True
                )

            async with trio.open_nursery() as nursery:
                for peer in peers.values():
                    nursery.start_soon(outage, peer)
            await env.start_csms()

            async def flap(identity: str) -> None:
                nonlocal reconnects
                for _ in range(12):
                    await trio.sleep(rng.uniform(0.02, 0.15))
                    await trio.to_thread.run_sync(peers[identity].stop)
                    peers[identity] = await env.connect(identity, V16)
                    reconnects += 1

            async with trio.open_nursery() as nursery:
                for identity in peers:
                    nursery.start_soon(flap, identity)
            last = {identity: ids[-1] for identity, ids in expected.items()}
            await trio.to_thread.run_sync(env.csms.wait_delivered, last, 80, abandon_on_cancel=True)
            for identity, ids in expected.items():
                assert check_replayed(env, identity, ids) == 0
            for peer in peers.values():
                await trio.to_thread.run_sync(peer.stop)
    assert reconnects == 48
