"""OCPP 1.6 core flows between an `ocpp`-package charge point and our listener."""

from __future__ import annotations

import pytest
import trio
from ocpp.v16 import call

from hubgate.ocpp.errors import OcppCallError
from tests.support.charge_points import now_text
from tests.support.ocpp_listener import V16, Running


def meter_value(energy_wh: float) -> dict[str, object]:
    samples = [
        {"value": "16.1", "measurand": "Current.Import", "phase": "L1", "unit": "A"},
        {"value": "15.9", "measurand": "Current.Import", "phase": "L2", "unit": "A"},
        {"value": "16.0", "measurand": "Current.Import", "phase": "L3", "unit": "A"},
        {"value": "231.0", "measurand": "Voltage", "phase": "L1-N", "unit": "V"},
        {"value": "11.04", "measurand": "Power.Active.Import", "unit": "kW"},
        {
            "value": str(energy_wh / 1000),
            "measurand": "Energy.Active.Import.Register",
            "unit": "kWh",
        },
        {"value": "63", "measurand": "SoC", "unit": "Percent"},
    ]
    return {"timestamp": now_text(), "sampledValue": samples}


async def test_boot_heartbeat_status_authorize_transaction_meter_values(server: Running) -> None:
    with trio.fail_after(20):
        cp = await server.connect("CP16", V16)
        try:
            assert cp.subprotocol == "ocpp1.6"
            boot = await trio.to_thread.run_sync(
                cp.call,
                call.BootNotification(
                    charge_point_model="Terra", charge_point_vendor="ABB", firmware_version="1.8"
                ),
            )
            assert boot.status == "Accepted"
            assert boot.interval == 60
            station = server.registry.get("CP16")
            assert station is not None
            assert station.boot is not None
            assert (station.boot.vendor, station.boot.firmware_version) == ("ABB", "1.8")

            beat = await trio.to_thread.run_sync(cp.call, call.Heartbeat())
            assert beat.current_time.endswith("Z")
            assert station.last_heartbeat is not None

            await trio.to_thread.run_sync(
                cp.call,
                call.StatusNotification(connector_id=1, error_code="NoError", status="Preparing"),
            )
            assert station.connector(1).status == "Preparing"

            auth = await trio.to_thread.run_sync(cp.call, call.Authorize(id_tag="TAG1"))
            assert auth.id_tag_info["status"] == "Accepted"

            start = await trio.to_thread.run_sync(
                cp.call,
                call.StartTransaction(
                    connector_id=1, id_tag="TAG1", meter_start=1000, timestamp=now_text()
                ),
            )
            tx_id = start.transaction_id
            assert station.connector(1).transaction is not None
            assert station.connector(1).transaction.transaction_id == str(tx_id)

            await trio.to_thread.run_sync(
                cp.call,
                call.MeterValues(
                    connector_id=1, transaction_id=tx_id, meter_value=[meter_value(2500)]
                ),
            )
            m = station.connector(1).measurement
            assert m.current_a == (16.1, 15.9, 16.0)
            assert m.voltage_v[0] == 231.0
            assert m.power_w == pytest.approx(11040.0)
            assert m.energy_wh == pytest.approx(2500.0)
            assert m.soc_percent == 63.0

            await trio.to_thread.run_sync(
                cp.call,
                call.StopTransaction(
                    meter_stop=3000,
                    timestamp=now_text(),
                    transaction_id=tx_id,
                    reason="EVDisconnected",
                ),
            )
            assert station.connector(1).transaction is None
            done = station.transactions[str(tx_id)]
            assert (done.meter_start_wh, done.meter_stop_wh) == (1000.0, 3000.0)
            assert done.stop_reason == "EVDisconnected"

            transfer = await trio.to_thread.run_sync(
                cp.call, call.DataTransfer(vendor_id="acme", message_id="x")
            )
            assert transfer.status == "UnknownVendorId"
        finally:
            await trio.to_thread.run_sync(cp.stop)


async def test_operations_towards_the_charge_point(server: Running) -> None:
    with trio.fail_after(20):
        cp = await server.connect("CP16", V16)
        try:
            session = await server.session_of("CP16")
            calls = [
                ("RemoteStartTransaction", {"idTag": "TAG9", "connectorId": 1}),
                ("RemoteStopTransaction", {"transactionId": 7}),
                ("Reset", {"type": "Soft"}),
                ("ChangeAvailability", {"connectorId": 1, "type": "Inoperative"}),
                ("ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "10"}),
                ("TriggerMessage", {"requestedMessage": "StatusNotification", "connectorId": 1}),
            ]
            for action, payload in calls:
                result = await session.call(action, payload)
                assert result == {"status": "Accepted"}, action
            config = await session.call(
                "GetConfiguration", {"key": ["ChargingScheduleAllowedChargingRateUnit"]}
            )
            assert config["configurationKey"][0]["value"] == "Current"
            assert [action for action, _ in cp.cp.received] == [
                *(a for a, _ in calls),
                "GetConfiguration",
            ]
            assert cp.cp.received[0][1] == {"id_tag": "TAG9", "connector_id": 1}
            # The charger has no profile yet: the composite schedule is rejected.
            composite = await session.call(
                "GetCompositeSchedule", {"connectorId": 0, "duration": 60}
            )
            assert composite["status"] == "Rejected"
            # An action the charge point does not handle comes back as a CallError.
            with pytest.raises(OcppCallError) as error:
                await session.call("UnlockConnector", {"connectorId": 1})
            assert error.value.code == "NotImplemented"
        finally:
            await trio.to_thread.run_sync(cp.stop)
