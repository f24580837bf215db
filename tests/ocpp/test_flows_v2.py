"""OCPP 2.0.1 and 2.1 core flows between `ocpp`-package charging stations and our listener."""

from __future__ import annotations

import pytest
import trio
from ocpp.v21 import call as call21
from ocpp.v201 import call

from hubgate.ocpp.errors import OcppCallError
from hubgate.ocpp.operations import ChargerOperations
from hubgate.ocpp.versions import OcppVersion
from tests.support.charge_points import now_text
from tests.support.ocpp_listener import V16, V21, V201, Running


def sampled(measurand: str, value: float, unit: str, phase: str | None = None) -> dict[str, object]:
    sample: dict[str, object] = {
        "value": value,
        "measurand": measurand,
        "unit_of_measure": {"unit": unit},
    }
    if phase is not None:
        sample["phase"] = phase
    return sample


def meter_value(energy_kwh: float) -> dict[str, object]:
    return {
        "timestamp": now_text(),
        "sampled_value": [
            sampled("Current.Import", 10.0, "A", "L1"),
            sampled("Current.Import", 11.0, "A", "L2"),
            sampled("Current.Import", 12.0, "A", "L3"),
            sampled("Power.Active.Import", 7.5, "kW"),
            sampled("Energy.Active.Import.Register", energy_kwh, "kWh"),
            sampled("SoC", 42, "Percent"),
        ],
    }


async def test_boot_heartbeat_status_authorize_transaction_events(server: Running) -> None:
    with trio.fail_after(20):
        cs = await server.connect("CP201", V201)
        try:
            assert cs.subprotocol == "ocpp2.0.1"
            boot = await trio.to_thread.run_sync(
                cs.call,
                call.BootNotification(
                    charging_station={"model": "Wallbox", "vendor_name": "Acme"}, reason="PowerUp"
                ),
            )
            assert (boot.status, boot.interval) == ("Accepted", 60)
            station = server.registry.get("CP201")
            assert station is not None
            assert station.boot is not None
            assert station.boot.model == "Wallbox"
            await trio.to_thread.run_sync(cs.call, call.Heartbeat())
            assert station.last_heartbeat is not None
            await trio.to_thread.run_sync(
                cs.call,
                call.StatusNotification(
                    timestamp=now_text(), connector_status="Occupied", evse_id=1, connector_id=1
                ),
            )
            assert station.connector(1).status == "Occupied"
            token = {"id_token": "TAG1", "type": "ISO14443"}
            auth = await trio.to_thread.run_sync(cs.call, call.Authorize(id_token=token))
            assert auth.id_token_info["status"] == "Accepted"

            def event(kind: str, seq: int, **extra: object) -> call.TransactionEvent:
                return call.TransactionEvent(
                    event_type=kind,
                    timestamp=now_text(),
                    trigger_reason="MeterValuePeriodic" if kind == "Updated" else "Authorized",
                    seq_no=seq,
                    transaction_info={"transaction_id": "tx-1", **extra},
                    evse={"id": 1, "connector_id": 1} if kind == "Started" else None,
                    id_token=token if kind == "Started" else None,
                    meter_value=[meter_value(5.0 + seq)],
                )

            started = await trio.to_thread.run_sync(cs.call, event("Started", 0))
            assert started.id_token_info["status"] == "Accepted"
            assert station.connector(1).transaction is not None
            await trio.to_thread.run_sync(cs.call, event("Updated", 1))
            m = station.connector(1).measurement
            assert m.current_a == (10.0, 11.0, 12.0)
            assert m.power_w == pytest.approx(7500.0)
            assert m.energy_wh == pytest.approx(6000.0)
            assert m.soc_percent == 42.0
            await trio.to_thread.run_sync(
                cs.call, event("Ended", 2, stopped_reason="EVDisconnected")
            )
            assert station.connector(1).transaction is None
            tx = station.transactions["tx-1"]
            assert (tx.meter_start_wh, tx.meter_stop_wh) == (5000.0, 7000.0)
            assert tx.stop_reason == "EVDisconnected"

            await trio.to_thread.run_sync(
                cs.call, call.MeterValues(evse_id=2, meter_value=[meter_value(1.0)])
            )
            assert station.connector(2).measurement.energy_wh == pytest.approx(1000.0)
        finally:
            await trio.to_thread.run_sync(cs.stop)


async def test_operations_towards_the_charging_station(server: Running) -> None:
    with trio.fail_after(20):
        cs = await server.connect("CP201", V201)
        try:
            session = await server.session_of("CP201")
            component = {
                "component": {"name": "SmartChargingCtrlr"},
                "variable": {"name": "RateUnit"},
            }
            calls = [
                (
                    "RequestStartTransaction",
                    {"idToken": {"idToken": "T", "type": "Central"}, "remoteStartId": 1},
                ),
                ("RequestStopTransaction", {"transactionId": "tx-1"}),
                ("Reset", {"type": "OnIdle"}),
                ("ChangeAvailability", {"operationalStatus": "Inoperative", "evse": {"id": 1}}),
                ("TriggerMessage", {"requestedMessage": "StatusNotification"}),
            ]
            for action, payload in calls:
                result = await session.call(action, payload)
                assert result["status"] == "Accepted", action
            got = await session.call("GetVariables", {"getVariableData": [component]})
            assert got["getVariableResult"][0]["attributeValue"] == "A"
            value = {**component, "attributeValue": "A"}
            put = await session.call("SetVariables", {"setVariableData": [value]})
            assert put["setVariableResult"][0]["attributeStatus"] == "Accepted"
            assert [a for a, _ in cs.cp.received] == [
                *(a for a, _ in calls),
                "GetVariables",
                "SetVariables",
            ]
            composite = await session.call("GetCompositeSchedule", {"duration": 60, "evseId": 0})
            assert composite["status"] == "Rejected"
            with pytest.raises(OcppCallError) as error:
                await session.call("UnlockConnector", {"evseId": 1, "connectorId": 1})
            assert error.value.code == "NotImplemented"
        finally:
            await trio.to_thread.run_sync(cs.stop)


async def test_ocpp21_station_boots_and_reports(server: Running) -> None:
    with trio.fail_after(20):
        cs = await server.connect("CP21", V21)
        try:
            assert cs.subprotocol == "ocpp2.1"
            boot = await trio.to_thread.run_sync(
                cs.call,
                call21.BootNotification(
                    charging_station={"model": "V2X", "vendor_name": "Acme"}, reason="PowerUp"
                ),
            )
            assert boot.status == "Accepted"
            await trio.to_thread.run_sync(
                cs.call, call21.MeterValues(evse_id=1, meter_value=[meter_value(2.0)])
            )
            station = server.registry.get("CP21")
            assert station is not None
            assert station.version == V21
            assert station.connector(1).measurement.current_a == (10.0, 11.0, 12.0)
        finally:
            await trio.to_thread.run_sync(cs.stop)


@pytest.mark.parametrize(("identity", "version"), [("CP16", V16), ("CP201", V201)])
async def test_version_neutral_operations(
    server: Running, identity: str, version: OcppVersion
) -> None:
    with trio.fail_after(20):
        peer = await server.connect(identity, version)
        try:
            ops = ChargerOperations(await server.session_of(identity))
            assert await ops.remote_start("TAG7", connector_id=1) == "Accepted"
            assert await ops.remote_stop("12") == "Accepted"
            assert await ops.reset(hard=True) == "Accepted"
            assert await ops.change_availability(0, operative=False) == "Accepted"
            assert await ops.trigger("StatusNotification", connector_id=1) == "Accepted"
            name = (
                "ChargingScheduleAllowedChargingRateUnit"
                if version is V16
                else "SmartChargingCtrlr.RateUnit"
            )
            assert (await ops.get_settings([name]))[name] in ("Current", "A")
            assert await ops.change_setting(name, "A") == "Accepted"
            received = dict(peer.cp.received)
            if version is V16:
                assert received["RemoteStopTransaction"] == {"transaction_id": 12}
                assert received["Reset"] == {"type": "Hard"}
            else:
                assert received["RequestStartTransaction"]["evse_id"] == 1
                assert received["Reset"] == {"type": "Immediate"}
                assert "evse" not in received["ChangeAvailability"]
        finally:
            await trio.to_thread.run_sync(peer.stop)
