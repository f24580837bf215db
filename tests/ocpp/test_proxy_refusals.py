"""A replayed transaction the CSMS refuses: held for an operator, never sent with a local id,
the charger told to stop when its id token was refused, the rest of the queue not blocked."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import trio
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from hubgate.api import ApiContext, serve_api
from hubgate.cloud.store import Store
from hubgate.config.loader import load_site
from hubgate.config.services import Api
from hubgate.control.commands import CommandRejectedError
from hubgate.control.deadlines import SocTarget
from hubgate.control.decisions import DecisionLog
from hubgate.ocpp.versions import OcppVersion
from hubgate.state import EventLevel, StateHub
from tests.support.charge_points import now_text
from tests.support.csms import CsmsThread
from tests.support.proxy import FAST, Proxied, open_proxied, transaction16

V16, V201 = OcppVersion.V16, OcppVersion.V201
PATIENT = dataclasses.replace(FAST, replay_retry_s=600.0)
"""A queue the refusal blocked would stall the test: nothing is retried within it."""


def _local_ids_sent(env: Proxied, identity: str) -> list[list[Any]]:
    """Frames that reached the CSMS with a local (negative) 1.6 transaction id."""
    return [
        f
        for f in env.csms.calls(identity)
        if isinstance(f[3].get("transactionId"), int) and f[3]["transactionId"] < 0
    ]


async def test_a_start_refused_with_a_call_error_is_held_then_released(tmp_path: Path) -> None:
    csms = CsmsThread(accepted={"TAG-OK", "TAG-X"}, refuse_starts={"TAG-X"})
    with trio.fail_after(30):
        async with open_proxied(tmp_path, csms_up=False, csms=csms, settings=PATIENT) as env:
            cp = await env.connect("CP16", V16)
            refused = ["r1", "r2", "r3"]
            accepted = ["a1", "a2", "a3"]
            first = await trio.to_thread.run_sync(
                lambda: transaction16(cp, refused, tag="TAG-X", meter=0)
            )
            second = await trio.to_thread.run_sync(
                lambda: transaction16(cp, accepted, tag="TAG-OK", meter=100)
            )
            assert (first, second) == (-1, -2)
            await env.start_csms()
            await trio.to_thread.run_sync(env.csms.wait_delivered, {"CP16": "a3"}, 10)
            # the refused start once, then the next transaction: nothing waited for a retry
            assert [f[1] for f in env.csms.calls("CP16")] == ["r1", "a1", "a2", "a3"]
            holds = await env.proxy.holds()
            assert [(h.charge_point, h.transaction, h.messages) for h in holds] == [
                ("CP16", "-1", 2)
            ]
            assert holds[0].reason.startswith("the CSMS refused StartTransaction: GenericError")
            assert holds[0].csms_transaction_id is None
            assert [(level, subject) for level, subject, _ in env.events] == [
                (EventLevel.WARNING, "CP16")
            ]
            assert "transaction -1 held" in env.events[0][2]
            dead = await env.proxy.queue.run(Store.dead_letters)
            assert [(d[2], d[3].split(":")[0]) for d in dead] == [
                ("StartTransaction", "GenericError")
            ]

            await env.proxy.release("CP16", "-1", 4242)  # the operator created it in the CSMS
            await trio.to_thread.run_sync(env.csms.wait_delivered, {"CP16": "r3"}, 10)
            later = env.csms.calls("CP16")[4:]
            assert [(f[1], f[3]["transactionId"]) for f in later] == [("r2", 4242), ("r3", 4242)]
            assert _local_ids_sent(env, "CP16") == []
            assert await env.proxy.holds() == []
            await trio.to_thread.run_sync(cp.stop)


async def test_a_discarded_transaction_never_reaches_the_csms(tmp_path: Path) -> None:
    csms = CsmsThread(accepted={"TAG-X"}, refuse_starts={"TAG-X"})
    with trio.fail_after(30):
        async with open_proxied(tmp_path, csms_up=False, csms=csms, settings=PATIENT) as env:
            cp = await env.connect("CP16", V16)
            await trio.to_thread.run_sync(lambda: transaction16(cp, ["r1", "r2"], tag="TAG-X"))
            await env.start_csms()
            await trio.to_thread.run_sync(env.csms.wait_delivered, {"CP16": "r1"}, 10)
            await env.holds(1)
            # the charger stops while its transaction is held: the stop is held too
            stop = call16.StopTransaction(transaction_id=-1, meter_stop=9, timestamp=now_text())
            await trio.to_thread.run_sync(cp.call, stop, 5.0, "r3")
            (hold,) = await env.proxy.holds()
            assert hold.messages == 2
            discarded = await env.proxy.discard("CP16", "-1")
            assert discarded.messages == 2
            assert await env.proxy.queue.run(lambda s: s.pending_count()) == 0
            dead = await env.proxy.queue.run(Store.dead_letters)
            assert [d[3] for d in dead[1:]] == ["discarded by the operator"] * 2
            assert [f[1] for f in env.csms.calls("CP16")] == ["r1"]
            await trio.to_thread.run_sync(cp.stop)


async def test_a_start_whose_id_tag_the_csms_refuses_is_stopped_and_held(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_proxied(
            tmp_path, csms_up=False, settings=PATIENT, allow_offline_tx_for_unknown_id=True
        ) as env:
            cp = await env.connect("CP16", V16)
            start = await trio.to_thread.run_sync(
                cp.call,
                call16.StartTransaction(
                    connector_id=1, id_tag="TAG-BAD", meter_start=0, timestamp=now_text()
                ),
                5.0,
                "s",
            )
            assert start.id_tag_info["status"] == "Accepted"  # unknown, allowed offline
            assert start.transaction_id == -1
            await env.start_csms()  # the CSMS says Invalid (and numbers it anyway)
            (stopped,) = await trio.to_thread.run_sync(
                cp.cp.wait_received, "RemoteStopTransaction", 1
            )
            assert stopped["transaction_id"] == -1  # the id the charger knows
            stop = call16.StopTransaction(transaction_id=-1, meter_stop=7, timestamp=now_text())
            await trio.to_thread.run_sync(cp.call, stop, 5.0, "t")
            (hold,) = await env.proxy.holds()
            csms_id = env.csms.transaction_id("CP16", "s")
            assert (hold.transaction, hold.csms_transaction_id, hold.messages) == ("-1", csms_id, 1)
            assert hold.reason == "the CSMS answered StartTransaction with Invalid"
            assert [f[1] for f in env.csms.calls("CP16")] == ["s"]
            messages = [m for _, _, m in env.events]
            assert any("stop requested (Accepted)" in m for m in messages)

            await env.proxy.release("CP16", "-1")  # under the id the CSMS gave
            await trio.to_thread.run_sync(env.csms.wait_delivered, {"CP16": "t"}, 10)
            assert env.csms.calls("CP16")[-1][3]["transactionId"] == csms_id
            await trio.to_thread.run_sync(cp.stop)


def _event(kind: str, seq: int, **extra: Any) -> Any:
    return call201.TransactionEvent(
        event_type=kind,
        timestamp=now_text(),
        trigger_reason="Authorized",
        seq_no=seq,
        transaction_info={"transaction_id": "tx-7"},
        evse={"id": 1, "connector_id": 1},
        **extra,
    )


async def test_v201_refused_token_requests_a_stop_and_holds_the_events(tmp_path: Path) -> None:
    token = {"id_token": "TAG-BAD", "type": "ISO14443"}
    with trio.fail_after(30):
        async with open_proxied(
            tmp_path, csms_up=False, settings=PATIENT, allow_offline_tx_for_unknown_id=True
        ) as env:
            cp = await env.connect("CP201", V201)
            started = await trio.to_thread.run_sync(
                cp.call, _event("Started", 0, id_token=token), 5.0, "e0"
            )
            assert started.id_token_info["status"] == "Accepted"
            await trio.to_thread.run_sync(cp.call, _event("Updated", 1), 5.0, "e1")
            await env.start_csms()
            (stop,) = await trio.to_thread.run_sync(
                cp.cp.wait_received, "RequestStopTransaction", 1
            )
            assert stop["transaction_id"] == "tx-7"
            await trio.to_thread.run_sync(cp.call, _event("Ended", 2), 5.0, "e2")
            (hold,) = await env.proxy.holds()
            assert (hold.transaction, hold.messages) == ("tx-7", 2)
            assert [f[1] for f in env.csms.calls("CP201")] == ["e0"]
            await env.proxy.release("CP201", "tx-7")
            await trio.to_thread.run_sync(env.csms.wait_delivered, {"CP201": "e2"}, 10)
            events = env.csms.calls("CP201", "TransactionEvent")
            assert [f[3]["seqNo"] for f in events] == [0, 1, 2]
            await trio.to_thread.run_sync(cp.stop)


async def test_v201_start_refused_with_a_call_error_is_held(tmp_path: Path) -> None:
    token = {"id_token": "TAG-X", "type": "ISO14443"}
    csms = CsmsThread(accepted={"TAG-X"}, refuse_starts={"TAG-X"})
    with trio.fail_after(30):
        async with open_proxied(tmp_path, csms_up=False, csms=csms, settings=PATIENT) as env:
            cp = await env.connect("CP201", V201)
            await trio.to_thread.run_sync(cp.call, _event("Started", 0, id_token=token), 5.0, "e0")
            await trio.to_thread.run_sync(cp.call, _event("Ended", 1), 5.0, "e1")
            boot = call201.BootNotification(
                charging_station={"model": "M", "vendor_name": "V"}, reason="PowerUp"
            )
            await trio.to_thread.run_sync(cp.call, boot, 5.0, "b")
            await env.start_csms()
            await trio.to_thread.run_sync(env.csms.wait_delivered, {"CP201": "b"}, 10)
            assert [f[1] for f in env.csms.calls("CP201")] == ["e0", "b"]
            (hold,) = await env.proxy.holds()
            assert (hold.transaction, hold.messages) == ("tx-7", 1)
            # a CallError is no verdict on the token: no stop (hubgate only read the
            # charger's offline rules for the offline start)
            assert [action for action, _ in cp.cp.received] == ["GetVariables"]
            await trio.to_thread.run_sync(cp.stop)


async def test_messages_stored_under_another_ocpp_version_do_not_stop_replay(
    tmp_path: Path,
) -> None:
    """A charger queues 1.6 messages, then comes back speaking 2.0.1: what the new link
    cannot carry goes to dead letters (its transaction held) and the rest goes on."""
    with trio.fail_after(30):
        async with open_proxied(tmp_path, csms_up=False, settings=PATIENT) as env:
            cp = await env.connect("CP201", V16)
            await trio.to_thread.run_sync(lambda: transaction16(cp, ["s", "m"]))
            await trio.to_thread.run_sync(cp.stop)
            await env.start_csms()
            cp = await env.connect("CP201", V201)
            await env.holds(1)
            heartbeat = await env.call(cp, call201.Heartbeat())
            assert heartbeat.current_time
            dead = await env.proxy.queue.run(Store.dead_letters)
            assert [(d[2], d[3].split(":")[0]) for d in dead] == [
                ("StartTransaction", "NotImplemented")
            ]
            assert "not sendable on this link" in dead[0][3]
            assert [f[2] for f in env.csms.calls("CP201")] == ["Heartbeat"]
            await trio.to_thread.run_sync(cp.stop)


class _NoCommands:
    """The API's `Commands`: not used here."""

    async def set_priority(self, connector: str, priority: int) -> None:
        raise CommandRejectedError("no control loop in this test")

    async def start_charging(self, connector: str, id_tag: str | None) -> None:
        raise CommandRejectedError("no control loop in this test")

    async def stop_charging(self, connector: str) -> None:
        raise CommandRejectedError("no control loop in this test")

    async def set_pv_mode(self, connector: str, pv_mode: bool) -> None:
        raise CommandRejectedError("no control loop in this test")

    async def set_session(
        self,
        connector: str,
        energy_kwh: float | None,
        departure: datetime | None,
        *,
        max_current_a: float | None = None,
        target: SocTarget | None = None,
    ) -> None:
        raise CommandRejectedError("no control loop in this test")


async def test_the_operator_sees_and_decides_held_transactions_over_the_api(
    tmp_path: Path, examples_dir: Path
) -> None:
    csms = CsmsThread(accepted={"TAG-X"}, refuse_starts={"TAG-X"})
    token = "operator-token-0123"
    site = load_site(examples_dir / "sites" / "small-4.toml")
    site = site.model_copy(update={"api": Api(port=0, token=token)})
    with trio.fail_after(30):
        async with (
            open_proxied(tmp_path, csms_up=False, csms=csms, settings=PATIENT) as env,
            trio.open_nursery() as nursery,
        ):
            context = ApiContext(
                site, StateHub(), env.book, DecisionLog(), _NoCommands(), csms=env.proxy
            )
            port = await nursery.start(serve_api, context)
            cp = await env.connect("CP16", V16)
            await trio.to_thread.run_sync(
                lambda: transaction16(cp, ["r1", "r2", "r3"], tag="TAG-X")
            )
            await env.start_csms()
            await env.holds(1)
            base = f"http://127.0.0.1:{port}/api/v1/csms/holds"
            auth = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient() as client:
                listed = (await client.get(base)).json()
                assert [(h["charge_point"], h["transaction"], h["messages"]) for h in listed] == [
                    ("CP16", "-1", 2)
                ]
                release = f"{base}/CP16/-1/release"
                refused = await client.post(release, headers=auth)
                assert refused.status_code == 409  # a 1.6 transaction the CSMS gave no id
                assert "give the one to send its messages with" in refused.json()["detail"]
                unknown = await client.post(f"{base}/CP16/-7/discard", headers=auth)
                assert unknown.status_code == 404
                anonymous = await client.post(release, json={"transaction_id": 88})
                assert anonymous.status_code == 401
                done = await client.post(release, json={"transaction_id": 88}, headers=auth)
                assert done.status_code == 200
                assert done.json()["messages"] == 2
                assert (await client.get(base)).json() == []
            await trio.to_thread.run_sync(env.csms.wait_delivered, {"CP16": "r3"}, 10)
            assert env.csms.calls("CP16")[-1][3]["transactionId"] == 88
            await trio.to_thread.run_sync(cp.stop)
            nursery.cancel_scope.cancel()
