"""Answers to OCPP 2.0.1 and 2.1 charging-station calls (2.1 extends 2.0.1 compatibly)."""

from __future__ import annotations

from typing import Any

import trio

from hubgate.devices.model import ChargingNeeds
from hubgate.ocpp.handlers_common import (
    MeterFields,
    boot_answer,
    common_handlers,
    measure,
    station_readings,
)
from hubgate.ocpp.meter_values import merge_readings, parse_timestamp
from hubgate.ocpp.policy import CsmsPolicy
from hubgate.ocpp.registry import BootInfo, Station, Transaction
from hubgate.ocpp.rpc import Payload
from hubgate.ocpp.session import Handler, Immediate
from hubgate.ocpp.versions import OcppVersion

ACKNOWLEDGED = (
    "NotifyEvent",
    "NotifyReport",
    "SecurityEventNotification",
    "FirmwareStatusNotification",
    "LogStatusNotification",
)
"""Notifications answered with an empty payload."""


StatusFields = tuple[int, str, None, str]
"""A StatusNotification as `hubgate._core.OcppCallReader` reads it: (evseId, connectorStatus, None, timestamp)."""


def handlers(station: Station, policy: CsmsPolicy, version: OcppVersion) -> dict[str, Handler]:
    """The 2.x handlers of one station speaking `version`."""

    def id_token_info(id_token: dict[str, Any]) -> dict[str, Any]:
        return policy.token_info(version, id_token["idToken"])

    def boot_notification(p: Payload) -> Payload:
        info = p["chargingStation"]
        boot = BootInfo(
            info["vendorName"], info["model"], info.get("serialNumber"), info.get("firmwareVersion")
        )
        return boot_answer(station, policy, boot)

    def status_notification(p: Payload) -> Payload:
        return status_read((p["evseId"], p["connectorStatus"], None, p["timestamp"]))

    def status_read(fields: StatusFields) -> Payload:
        evse_id, status, _, timestamp = fields
        station.connector(evse_id).report(status=status)
        station.clock.stamped(timestamp)
        return {}

    def authorize(p: Payload) -> Payload:
        return {"idTokenInfo": id_token_info(p["idToken"])}

    def transaction_event(p: Payload) -> Payload:
        info = p["transactionInfo"]
        transaction = station.transactions.get(info["transactionId"])
        evse_id = p["evse"]["id"] if "evse" in p else None
        if transaction is None:
            transaction = Transaction(
                info["transactionId"],
                evse_id or 0,
                p.get("idToken", {}).get("idToken"),
                parse_timestamp(p["timestamp"]),
                seen_at=trio.current_time(),
            )
            station.connector(transaction.connector_id)  # an EVSE it has, before it is kept
            station.remember(transaction)
        connector = station.connector(evse_id if evse_id is not None else transaction.connector_id)
        station.clock.stamped(p["timestamp"])
        if "meterValue" in p:
            values = station_readings(station, p["meterValue"], version)
            connector.measure(merge_readings(connector.measurement, values))
        if p["eventType"] == "Ended":
            transaction.stopped = parse_timestamp(p["timestamp"])
            transaction.stop_reason = info.get("stoppedReason", "Local")
            transaction.meter_stop_wh = connector.measurement.energy_wh
            if connector.transaction is transaction:
                connector.run(None)
        else:
            connector.run(transaction)
            connector.report(charging_state=info.get("chargingState"))
            if transaction.meter_start_wh is None:
                transaction.meter_start_wh = connector.measurement.energy_wh
        return {"idTokenInfo": id_token_info(p["idToken"])} if "idToken" in p else {}

    def notify_ev_charging_needs(p: Payload) -> Payload:
        needs = p["chargingNeeds"]
        ac = needs.get("acChargingParameters")
        parameters = ac or needs.get("dcChargingParameters") or {}
        energy = parameters.get("energyAmount")
        departure = needs.get("departureTime")
        most = None if ac is None else ac.get("evMaxCurrent")
        station.connector(p["evseId"]).charging_needs = ChargingNeeds(
            None if energy is None else float(energy),
            None if departure is None else parse_timestamp(departure),
            None if most is None else float(most),
        )
        return {"status": "Accepted"}

    def meter_values(p: Payload) -> Payload:
        return meter_values_read((p["evseId"], station_readings(station, p["meterValue"], version)))

    def meter_values_read(fields: MeterFields) -> Payload:
        evse_id, values = fields
        measure(station, station.connector(evse_id), values)
        return {}

    return {
        "BootNotification": Immediate(boot_notification),
        "StatusNotification": Immediate(status_notification, hot=status_read),
        "Authorize": Immediate(authorize),
        "TransactionEvent": Immediate(transaction_event),
        "MeterValues": Immediate(meter_values, hot=meter_values_read),
        "NotifyEVChargingNeeds": Immediate(notify_ev_charging_needs),
        **common_handlers(station, ACKNOWLEDGED),
    }
