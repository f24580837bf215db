"""Answers to OCPP 1.6 charge-point calls, updating the station's state."""

from __future__ import annotations

import itertools
import time
from typing import Any

import trio

from hubgate.ocpp.handlers_common import (
    MeterFields,
    boot_answer,
    common_handlers,
    measure,
    station_readings,
)
from hubgate.ocpp.meter_values import parse_timestamp
from hubgate.ocpp.policy import CsmsPolicy
from hubgate.ocpp.registry import BootInfo, Station, Transaction
from hubgate.ocpp.rpc import Payload
from hubgate.ocpp.session import Handler, Immediate
from hubgate.ocpp.versions import OcppVersion

_TRANSACTION_IDS = itertools.count(int(time.time()) % 2_000_000_000)
"""1.6 transaction ids are assigned by the CSMS. Seeded from the clock so that a restart
does not hand out ids a charger may still hold from before; they stay within int32."""

ACKNOWLEDGED = ("FirmwareStatusNotification", "DiagnosticsStatusNotification")
"""Notifications answered with an empty payload."""


StatusFields = tuple[int, str, str, str | None]
"""A StatusNotification as `hubgate._core.OcppCallReader` reads it: (connectorId, status, errorCode, timestamp)."""


def handlers(station: Station, policy: CsmsPolicy) -> dict[str, Handler]:
    """The 1.6 handlers of one station."""

    def id_tag_info(id_tag: str) -> dict[str, Any]:
        return policy.token_info(OcppVersion.V16, id_tag)

    def boot_notification(p: Payload) -> Payload:
        boot = BootInfo(
            p["chargePointVendor"],
            p["chargePointModel"],
            p.get("chargePointSerialNumber"),
            p.get("firmwareVersion"),
        )
        return boot_answer(station, policy, boot)

    def status_notification(p: Payload) -> Payload:
        return status_read((p["connectorId"], p["status"], p["errorCode"], p.get("timestamp")))

    def status_read(fields: StatusFields) -> Payload:
        connector_id, status, error_code, timestamp = fields
        connector = station.connector(connector_id)
        connector.report(status=status)
        connector.error_code = error_code
        station.clock.stamped(timestamp)
        return {}

    def authorize(p: Payload) -> Payload:
        return {"idTagInfo": id_tag_info(p["idTag"])}

    def start_transaction(p: Payload) -> Payload:
        transaction = Transaction(
            str(next(_TRANSACTION_IDS)),
            p["connectorId"],
            p["idTag"],
            parse_timestamp(p["timestamp"]),
            meter_start_wh=float(p["meterStart"]),
            seen_at=trio.current_time(),
        )
        connector = station.connector(p["connectorId"])
        station.remember(transaction)
        connector.run(transaction)
        station.clock.stamped(p["timestamp"])
        return {
            "transactionId": int(transaction.transaction_id),
            "idTagInfo": id_tag_info(p["idTag"]),
        }

    def stop_transaction(p: Payload) -> Payload:
        transaction = station.transactions.get(str(p["transactionId"]))
        if transaction is not None:
            transaction.stopped = parse_timestamp(p["timestamp"])
            transaction.meter_stop_wh = float(p["meterStop"])
            transaction.stop_reason = p.get("reason", "Local")
            connector = station.connector(transaction.connector_id)
            if connector.transaction is transaction:
                connector.run(None)
        station.clock.stamped(p["timestamp"])
        return {"idTagInfo": id_tag_info(p["idTag"])} if "idTag" in p else {}

    def meter_values(p: Payload) -> Payload:
        return meter_values_read(
            (p["connectorId"], station_readings(station, p["meterValue"], OcppVersion.V16))
        )

    def meter_values_read(fields: MeterFields) -> Payload:
        connector_id, values = fields
        measure(station, station.connector(connector_id), values)
        return {}

    return {
        "BootNotification": Immediate(boot_notification),
        "StatusNotification": Immediate(status_notification, hot=status_read),
        "Authorize": Immediate(authorize),
        "StartTransaction": Immediate(start_transaction),
        "StopTransaction": Immediate(stop_transaction),
        "MeterValues": Immediate(meter_values, hot=meter_values_read),
        **common_handlers(station, ACKNOWLEDGED),
    }
