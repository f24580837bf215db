"""The proxy while the CSMS is away: local authorization, store-and-forward, in-order replay."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trio
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from hubgate.backoff import Backoff
from hubgate.ocpp.versions import OcppVersion
from tests.support.charge_points import ChargePointThread, now_text
from tests.support.proxy import (
    FAST,
    FLEET,
    check_replayed,
    open_proxied,
    outage_script,
    transaction16,
)

V16, V201 = OcppVersion.V16, OcppVersion.V201


async def test_offline_authorize_answers_from_the_local_list_and_cache(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with open_proxied(tmp_path) as env:
            cp = await env.connect("CP16", V16)
            entries = [
                {"id_tag": "LIST-OK", "id_tag_info": {"status": "Accepted"}},
                {"id_tag": "LIST-BLOCKED", "id_tag_info": {"status": "Blocked"}},
            ]
            sent = await env.csms_call(
                "CP16",
                call16.SendLocalList(
                    list_version=3, update_type="Full", local_authorization_list=entries
                ),
            )
            assert sent.status == "Accepted"
            version = await env.csms_call("CP16", call16.GetLocalListVersion())
            assert version.list_version == 3
            assert "SendLocalList" not in [a for a, _ in cp.cp.received]  # hubgate keeps it
            online = await env.call(cp, call16.Authorize(id_tag="TAG-OK"))  # → the cache
            assert online.id_tag_info["status"] == "Accepted"

            await env.stop_csms()
            answers = {}
            for tag in ("LIST-OK", "LIST-BLOCKED", "TAG-OK", "NEVER-SEEN"):
                answer = await env.call(cp, call16.Authorize(id_tag=tag))
                answers[tag] = answer.id_tag_info["status"]
            assert answers == {
                "LIST-OK": "Accepted",
                "LIST-BLOCKED": "Blocked",
                "TAG-OK": "Accepted",
                "NEVER-SEEN": "Invalid",
            }
            assert len(env.csms.calls("CP16", "Authorize")) == 1  # only the online one
            await trio.to_thread.run_sync(cp.stop)


async def test_v201_offline_transaction_events_are_replayed(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with open_proxied(tmp_path, csms_up=False) as env:
            cp = await env.connect("CP201", V201)
            token = {"id_token": "TAG-OK", "type": "ISO14443"}
            for seq, kind in enumerate(("Started", "Updated", "Ended")):
                event = call201.TransactionEvent(
                    event_type=kind,
                    timestamp=now_text(),
                    trigger_reason="Authorized",
                    seq_no=seq,
                    transaction_info={"transaction_id": "tx-9"},
                    offline=True,
                    id_token=token,
                )
                await env.call(cp, event)
            auth = await env.call(cp, call201.Authorize(id_token=token))
            assert auth.id_token_info["status"] == "Unknown"  # not in the list, never cached
            await env.start_csms()
            await trio.to_thread.run_sync(env.csms.wait_calls, 3, 10, {"CP201"})
            events = env.csms.calls("CP201", "TransactionEvent")
            assert [f[3]["seqNo"] for f in events] == [0, 1, 2]
            assert all(f[3]["offline"] is True for f in events)
            await trio.to_thread.run_sync(cp.stop)


@pytest.mark.timeout(300)  # after the deadline below, so that Trio ends the test cleanly
async def test_long_outage_ten_thousand_messages_replayed_in_order_once(tmp_path: Path) -> None:
    """10,000 messages through 10 `ocpp` charge points, hubgate and the test CSMS, all in
    this process (35-40 s of CPU): about 25 s on a quiet machine, 130 s at a load average of
    15 on its 2 cores. The deadline ends the blocking waits too (abandoned threads)."""
    base = datetime(2026, 11, 1, tzinfo=UTC)
    with trio.fail_after(240):
        async with open_proxied(tmp_path, csms_up=False) as env:
            peers = [await env.connect(a.identity, V16) for a in FLEET]
            expected: dict[str, list[str]] = {}

            async def outage(peer: ChargePointThread) -> None:
                expected[peer.identity] = await trio.to_thread.run_sync(
                    outage_script, peer, 100, base, abandon_on_cancel=True
                )

            async with trio.open_nursery() as nursery:
                for peer in peers:
                    nursery.start_soon(outage, peer)
            assert sum(map(len, expected.values())) == 10_000
            assert env.csms.frames == []
            pending = await env.proxy.queue.run(lambda s: s.pending_count())
            assert pending == 10_000
            await env.start_csms()
            last = {identity: ids[-1] for identity, ids in expected.items()}
            await trio.to_thread.run_sync(
                env.csms.wait_delivered, last, 150, abandon_on_cancel=True
            )
            for identity, ids in expected.items():
                assert check_replayed(env, identity, ids) == 0  # no process died: exactly once
            while True:  # the last acknowledgement may follow the CSMS's answer by a moment
                if not await env.proxy.queue.run(lambda s: s.pending_count()):
                    break
                await trio.sleep(0.01)
            # the chargers keep their local ids; hubgate maps them for later calls too
            start = env.csms.calls("FLEET-0", "StartTransaction")[-1]
            csms_id = env.csms.transaction_id("FLEET-0", start[1])
            stop = env.csms.calls("FLEET-0", "StopTransaction")[-1]
            assert stop[3]["transactionId"] == csms_id
            for peer in peers:
                await trio.to_thread.run_sync(peer.stop)


async def test_new_transaction_messages_queue_behind_a_backlog(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_proxied(tmp_path, csms_up=False) as env:
            cp = await env.connect("CP16", V16)
            ids = await trio.to_thread.run_sync(
                outage_script, cp, 30, datetime(2026, 11, 1, tzinfo=UTC)
            )
            await env.start_csms()
            # while the 300 queued messages replay, the charger goes on: its new messages
            # reach the CSMS after the backlog, in order
            more = await trio.to_thread.run_sync(
                outage_script, cp, 3, datetime(2026, 11, 2, tzinfo=UTC)
            )
            await trio.to_thread.run_sync(env.csms.wait_delivered, {"CP16": more[-1]}, 20)
            assert check_replayed(env, "CP16", ids + more) == 0
            await trio.to_thread.run_sync(cp.stop)


async def test_remote_stop_reaches_the_charger_with_its_local_transaction_id(
    tmp_path: Path,
) -> None:
    with trio.fail_after(20):
        async with open_proxied(tmp_path, csms_up=False) as env:
            cp = await env.connect("CP16", V16)
            payload = call16.StartTransaction(
                connector_id=1, id_tag="TAG-OK", meter_start=0, timestamp=now_text()
            )
            start = await trio.to_thread.run_sync(cp.call, payload, 5.0, "start-1")
            assert start.transaction_id == -1  # issued by hubgate while the CSMS is away
            await env.start_csms()
            await trio.to_thread.run_sync(env.csms.wait_delivered, {"CP16": "start-1"}, 10)
            csms_id = env.csms.transaction_id("CP16", "start-1")
            while True:  # hubgate records the CSMS's id once it has the answer
                known = await env.proxy.queue.run(lambda s: s.csms_transaction_id("CP16", -1))
                if known is not None:
                    break
                await trio.sleep(0.01)
            assert known == csms_id
            stop = call16.RemoteStopTransaction(transaction_id=csms_id)
            answer = await env.csms_call("CP16", stop)
            assert answer.status == "Accepted"
            received = await trio.to_thread.run_sync(
                cp.cp.wait_received, "RemoteStopTransaction", 1
            )
            assert received[0]["transaction_id"] == -1
            await trio.to_thread.run_sync(cp.stop)


async def test_replay_starts_when_the_csms_is_back_not_when_the_backoff_ends(
    tmp_path: Path,
) -> None:
    """The links wait 10 minutes between attempts; one TCP probe a fifth of a second, for
    all of them, finds the CSMS back and every charger's backlog goes at once."""
    slow = replace(
        FAST,
        backoff=Backoff(initial_s=600.0, maximum_s=600.0),
        probe_interval_s=0.2,
        probe_spread_s=0.1,
    )
    chargers = [a.identity for a in FLEET[:5]]
    with trio.fail_after(30):
        async with open_proxied(tmp_path, csms_up=False, settings=slow) as env:
            peers = [await env.connect(identity, V16) for identity in chargers]
            for n, peer in enumerate(peers):
                await trio.to_thread.run_sync(
                    lambda peer=peer, n=n: transaction16(peer, [f"s{n}", f"m{n}", f"t{n}"])
                )
            for identity in chargers:
                await (await env.link(identity)).attempted.wait()
            # the probes began with the first link's wait, before the last one's: count
            # from here, plus the one that may be under way
            waiting_since, probes_before = trio.current_time(), env.proxy.probe.probes
            await trio.sleep(1.0)  # the CSMS stays away a while: probes fail meanwhile
            await env.start_csms()
            last = {identity: f"t{n}" for n, identity in enumerate(chargers)}
            await trio.to_thread.run_sync(env.csms.wait_delivered, last, 10)
            elapsed = trio.current_time() - waiting_since
            # one probe per interval for the whole site, however many links wait
            assert env.proxy.probe.probes - probes_before <= elapsed / 0.2 + 2
            for peer in peers:
                await trio.to_thread.run_sync(peer.stop)
