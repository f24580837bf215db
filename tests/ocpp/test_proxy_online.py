"""The proxy while the CSMS is up: calls both ways, profiles intercepted, hubgate's own calls kept."""

from __future__ import annotations

from pathlib import Path

import trio
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from hubgate.control.limits import SITE, Limit, LimitSource
from hubgate.ocpp.versions import OcppVersion
from tests.support.charge_points import now_text
from tests.support.proxy import GATEWAY, open_proxied

V16, V201 = OcppVersion.V16, OcppVersion.V201


async def test_charger_calls_reach_the_csms_and_its_answers_come_back(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with open_proxied(tmp_path) as env:
            cp = await env.connect("CP16", V16)
            await env.online("CP16")  # else its first call may be answered locally
            boot = await env.call(
                cp, call16.BootNotification(charge_point_model="M", charge_point_vendor="V")
            )
            assert boot.interval == 123  # the CSMS's answer, not hubgate's
            start = await env.call(
                cp,
                call16.StartTransaction(
                    connector_id=1, id_tag="TAG-OK", meter_start=0, timestamp=now_text()
                ),
            )
            assert start.transaction_id == 1000
            assert start.id_tag_info["status"] == "Accepted"
            await env.call(
                cp,
                call16.StopTransaction(
                    transaction_id=1000, meter_stop=10, timestamp=now_text(), id_tag="TAG-OK"
                ),
            )
            frames = env.csms.calls("CP16")
            assert [f[2] for f in frames] == [
                "BootNotification",
                "StartTransaction",
                "StopTransaction",
            ]
            assert frames[1][3]["idTag"] == "TAG-OK"
            # hubgate's own state follows, keyed by the CSMS's id
            station = env.registry.get("CP16")
            assert station is not None
            assert station.transactions["1000"].meter_stop_wh == 10

            # CSMS → charger, answered by the charger
            answer = await env.csms_call("CP16", call16.RemoteStartTransaction(id_tag="T2"))
            assert answer.status == "Accepted"
            received = await trio.to_thread.run_sync(
                cp.cp.wait_received, "RemoteStartTransaction", 1
            )
            assert received[0]["id_tag"] == "T2"
            await trio.to_thread.run_sync(cp.stop)


async def test_v201_transaction_events_and_remote_start(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with open_proxied(tmp_path) as env:
            cp = await env.connect("CP201", V201)
            await env.online("CP201")  # else the event is answered locally: 'Unknown'
            event = call201.TransactionEvent(
                event_type="Started",
                timestamp=now_text(),
                trigger_reason="Authorized",
                seq_no=0,
                transaction_info={"transaction_id": "tx-1"},
                evse={"id": 1},
                id_token={"id_token": "TAG-OK", "type": "ISO14443"},
            )
            answer = await env.call(cp, event)
            assert answer.id_token_info["status"] == "Accepted"
            frames = env.csms.calls("CP201", "TransactionEvent")
            assert frames[0][3]["transactionInfo"] == {"transactionId": "tx-1"}
            started = await env.csms_call(
                "CP201",
                call201.RequestStartTransaction(
                    id_token={"id_token": "X", "type": "Central"}, remote_start_id=7
                ),
            )
            assert started.status == "Accepted"
            await trio.to_thread.run_sync(cp.stop)


async def test_a_2_0_1_remote_starts_profile_waits_for_the_evse_the_charger_names(
    tmp_path: Path,
) -> None:
    """A RequestStartTransaction without an evseId carries a 32 A TxProfile: the start goes
    on without it; the profile becomes a CSMS lease on the EVSE the charger's
    TransactionEvent names for that token, and ends with that transaction (1.6 with a
    connector: tests/runtime/test_gateway_csms_profiles.py)."""
    target = "charger-201#1"
    profile = {
        "id": 5,
        "stack_level": 1,
        "charging_profile_purpose": "TxProfile",
        "charging_profile_kind": "Relative",
        "charging_schedule": [
            {
                "id": 1,
                "charging_rate_unit": "A",
                "charging_schedule_period": [{"start_period": 0, "limit": 32.0}],
            }
        ],
    }
    token = {"id_token": "REMOTE-1", "type": "Central"}

    def event(kind: str, seq: int) -> call201.TransactionEvent:
        return call201.TransactionEvent(
            event_type=kind,
            timestamp=now_text(),
            trigger_reason="RemoteStart" if kind == "Started" else "StopAuthorized",
            seq_no=seq,
            transaction_info={"transaction_id": "tx-7", "remote_start_id": 7},
            evse={"id": 1, "connector_id": 1} if kind == "Started" else None,
            id_token=token if kind == "Started" else None,
        )

    with trio.fail_after(20):
        async with open_proxied(tmp_path) as env:
            cp = await env.connect("CP201", V201)
            start = call201.RequestStartTransaction(
                id_token=token, remote_start_id=7, charging_profile=profile
            )
            assert (await env.csms_call("CP201", start)).status == "Accepted"
            (forwarded,) = [p for a, p in cp.cp.received if a == "RequestStartTransaction"]
            assert "charging_profile" not in forwarded
            before = env.book.in_force(target, trio.current_time()).sources
            await env.call(cp, event("Started", 0))
            during = env.book.in_force(target, trio.current_time())
            await env.call(cp, event("Ended", 1))
            after = env.book.in_force(target, trio.current_time()).sources
            await trio.to_thread.run_sync(cp.stop)
    assert before == ()
    assert during.sources == (LimitSource.CSMS,)
    assert during.limit == Limit(phase_a=(32.0, 32.0, 32.0))
    assert after == ()


async def test_hubgate_own_calls_never_reach_the_csms(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with open_proxied(tmp_path) as env:
            cp = await env.connect("CP16", V16)
            await env.online("CP16")
            station = env.registry.get("CP16")
            assert station is not None
            assert station.session is not None
            await station.session.call("GetConfiguration", {})
            await station.session.call("TriggerMessage", {"requestedMessage": "Heartbeat"})
            assert [a for a, _ in cp.cp.received] == ["GetConfiguration", "TriggerMessage"]
            await env.call(cp, call16.Heartbeat())  # a later charger call still goes up
            frames = [f for i, f in env.csms.frames if i == "CP16"]
            assert [f[0] for f in frames] == [2]  # only the Heartbeat: no results of our calls
            assert frames[0][2] == "Heartbeat"
            await trio.to_thread.run_sync(cp.stop)


def _profile16(
    limit: float, periods: list[tuple[int, float]] | None = None
) -> call16.SetChargingProfile:
    schedule = [{"start_period": s, "limit": v} for s, v in (periods or [(0, limit)])]
    return call16.SetChargingProfile(
        connector_id=1,
        cs_charging_profiles={
            "charging_profile_id": 9,
            "stack_level": 2,
            "charging_profile_purpose": "TxDefaultProfile",
            "charging_profile_kind": "Relative",
            "charging_schedule": {"charging_rate_unit": "A", "charging_schedule_period": schedule},
        },
    )


async def test_csms_profile_becomes_a_lease_and_is_not_forwarded(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with open_proxied(tmp_path) as env:
            cp = await env.connect("CP16", V16)
            answer = await env.csms_call("CP16", _profile16(0, [(0, 16.0), (1, 8.0)]))
            assert answer.status == "Accepted"
            in_force = env.book.in_force("charger-16#1", trio.current_time())
            assert in_force.limit == Limit(phase_a=(16.0, 16.0, 16.0))
            assert in_force.sources == (LimitSource.CSMS,)
            lease = next(iter(env.book.leases()))
            assert lease.expires_at is not None  # the first period ends after 1 s
            await trio.sleep(1.2)
            in_force = env.book.in_force("charger-16#1", trio.current_time())
            assert in_force.limit == Limit(phase_a=(8.0, 8.0, 8.0))
            assert "SetChargingProfile" not in [a for a, _ in cp.cp.received]
            cleared = await env.csms_call("CP16", call16.ClearChargingProfile(connector_id=1))
            assert cleared.status == "Accepted"
            assert env.book.in_force("charger-16#1", trio.current_time()).sources == ()
            refused = await env.csms_call("CP16", _profile16(0, [(0, -5.0)]))
            assert refused.status == "Rejected"  # no lease, and the proxy goes on
            assert env.book.in_force("charger-16#1", trio.current_time()).sources == ()
            await trio.to_thread.run_sync(cp.stop)


async def test_profile_to_the_gateway_sets_the_site_limit(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with open_proxied(tmp_path) as env:
            boot = await trio.to_thread.run_sync(
                lambda: env.csms.wait_calls(1, 5, {GATEWAY}) and env.csms.calls(GATEWAY)
            )
            assert boot[0][2] == "BootNotification"
            profile = call201.SetChargingProfile(
                evse_id=0,
                charging_profile={
                    "id": 1,
                    "stack_level": 0,
                    "charging_profile_purpose": "ChargingStationMaxProfile",
                    "charging_profile_kind": "Absolute",
                    "charging_schedule": [
                        {
                            "id": 1,
                            "start_schedule": now_text(-60),
                            "charging_rate_unit": "W",
                            "charging_schedule_period": [{"start_period": 0, "limit": 40000}],
                        }
                    ],
                },
            )
            answer = await env.csms_call(GATEWAY, profile)
            assert answer.status == "Accepted"
            in_force = env.book.in_force(SITE, trio.current_time())
            assert in_force.limit == Limit(power_kw=40.0)
            cleared = await env.csms_call(GATEWAY, call201.ClearChargingProfile())
            assert cleared.status == "Accepted"
            assert env.book.in_force(SITE, trio.current_time()).sources == ()


async def test_charger_leaving_closes_its_upstream_connection(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with open_proxied(tmp_path) as env:
            cp = await env.connect("CP201", V201)
            await trio.to_thread.run_sync(env.csms.wait_connected, "CP201")
            await trio.to_thread.run_sync(cp.stop)
            while True:  # §6: the Local Controller closes the CSMS side too
                if "CP201" not in env.csms.connections and "CP201" not in env.proxy.chargers:
                    break
                await trio.sleep(0.01)
