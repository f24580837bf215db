"""Calls only the CSMS can answer, and only now: sent ahead of a replaying backlog when the
CSMS is there, answered with a schema-valid rejection when it is not, never stored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from hubgate.cloud.store import Outgoing
from hubgate.ocpp.versions import OcppVersion
from tests.support.csms import CsmsThread
from tests.support.proxy import open_proxied

V16, V201 = OcppVersion.V16, OcppVersion.V201
OCSP = {
    "hash_algorithm": "SHA256",
    "issuer_name_hash": "0a1b",
    "issuer_key_hash": "2c3d",
    "serial_number": "7f",
    "responder_url": "http://ocsp.example.com",
}
CASES: list[tuple[OcppVersion, Any, dict[str, str]]] = [
    # (version, the call, its answer's fields from the CSMS / from hubgate when it is away)
    (V16, call16.DataTransfer(vendor_id="com.example", data="x"), {"status": "Rejected"}),
    (V201, call201.DataTransfer(vendor_id="com.example", data="x"), {"status": "Rejected"}),
    (V201, call201.SignCertificate(csr="-----BEGIN CSR-----"), {"status": "Rejected"}),
    (
        V201,
        call201.Get15118EVCertificate(
            iso15118_schema_version="urn:iso:15118:2:2013:MsgDef",
            action="Install",
            exi_request="AA",
        ),
        {"status": "Failed", "exi_response": ""},
    ),
    (V201, call201.GetCertificateStatus(ocsp_request_data=OCSP), {"status": "Failed"}),
    (
        V201,
        call201.NotifyEVChargingNeeds(
            evse_id=1, charging_needs={"requested_energy_transfer": "AC_three_phase"}
        ),
        {"status": "Rejected"},
    ),
]
IDS = [f"{v}-{type(c).__name__}" for v, c, _ in CASES]


def _status_of(answer: Any) -> str:
    return str(answer.status)


@pytest.mark.parametrize(("version", "request_", "rejection"), CASES, ids=IDS)
async def test_answered_with_a_rejection_while_the_csms_is_away(
    tmp_path: Path, version: OcppVersion, request_: Any, rejection: dict[str, str]
) -> None:
    identity = "CP16" if version is V16 else "CP201"
    with trio.fail_after(20):
        async with open_proxied(tmp_path, csms_up=False) as env:
            cp = await env.connect(identity, version)
            # the `ocpp` peer checks the answer against the response schema
            answer = await env.call(cp, request_)
            assert {k: getattr(answer, k) for k in rejection} == rejection
            assert await env.proxy.queue.run(lambda s: s.pending_count()) == 0  # never stored
            await env.start_csms()
            await env.online(identity)
            heartbeat = call16.Heartbeat() if version is V16 else call201.Heartbeat()
            await env.call(cp, heartbeat)
            assert [f[2] for f in env.csms.calls(identity)] == ["Heartbeat"]  # never replayed
            await trio.to_thread.run_sync(cp.stop)


def _backlog(identity: str, version: OcppVersion, count: int) -> list[Outgoing]:
    """Transaction messages stored while the CSMS was away."""
    stamp = "2026-11-01T00:00:00Z"
    if version is V16:
        values = [{"timestamp": stamp, "sampledValue": [{"value": "1"}]}]
        payload = {"connectorId": 1, "transactionId": 5, "meterValue": values}
        return [Outgoing(identity, f"m{n}", "MeterValues", payload) for n in range(count)]
    values = [{"timestamp": stamp, "sampledValue": [{"value": 1.0}]}]
    return [
        Outgoing(
            identity,
            f"m{n}",
            "TransactionEvent",
            {
                "eventType": "Updated",
                "timestamp": stamp,
                "triggerReason": "MeterValuePeriodic",
                "seqNo": n,
                "transactionInfo": {"transactionId": "tx-1"},
                "meterValue": values,
            },
        )
        for n in range(count)
    ]


@pytest.mark.parametrize(("version", "request_", "rejection"), CASES, ids=IDS)
async def test_sent_ahead_of_a_replaying_backlog(
    tmp_path: Path, version: OcppVersion, request_: Any, rejection: dict[str, str]
) -> None:
    """200 stored messages replay to a CSMS that takes 200 ms over each: the call reaches it
    right after the one in flight, and its answer is the CSMS's. (200 ms per message: the
    charger thread's hop to hubgate, slow on a loaded machine, must not count as backlog.)"""
    identity = "CP16" if version is V16 else "CP201"
    csms = CsmsThread(delay_s=0.2)
    with trio.fail_after(30):
        async with open_proxied(tmp_path, csms=csms) as env:
            stored = _backlog(identity, version, 200)
            await env.proxy.queue.run(lambda s: s.enqueue_many(stored))
            cp = await env.connect(identity, version)
            await trio.to_thread.run_sync(env.csms.wait_calls, 3, 10, {identity})
            replayed = len(env.csms.calls(identity))
            answer = await env.call(cp, request_)
            assert _status_of(answer) == "Accepted"  # the CSMS's answer
            calls = env.csms.calls(identity)
            position = [f[2] for f in calls].index(type(request_).__name__)
            assert position <= replayed + 2  # behind the message in flight, not the backlog
            queued = await env.proxy.queue.run(lambda s: s.pending(identity, limit=1000))
            assert len(queued) > 0  # still replaying
            assert {m.action for m in queued} == {stored[0].action}  # and it was never stored
            await trio.to_thread.run_sync(cp.stop)
