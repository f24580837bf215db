"""What the 1.6 and 2.x handlers answer alike: boot, heartbeat, data transfer, notifications."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from hubgate.ocpp.meter_values import Reading, merge_readings
from hubgate.ocpp.policy import CsmsPolicy, ocpp_now, ocpp_time
from hubgate.ocpp.registry import BootInfo, ConnectorState, Station
from hubgate.ocpp.rpc import Payload
from hubgate.ocpp.session import Handler, Immediate

MeterFields = tuple[int, list[Reading]]
"""A MeterValues as `hubgate._core.OcppCallReader` reads it: (1.6 connectorId or 2.x
evseId, the reading of each meterValue)."""


def boot_answer(station: Station, policy: CsmsPolicy, boot: BootInfo) -> Payload:
    """Record what the station booted as; the BootNotification answer the policy gives."""
    station.boot = boot
    station.booting()
    if policy.boot_status == "Accepted":
        station.booted.set()
    return {
        "status": policy.boot_status,
        "currentTime": ocpp_now(),
        "interval": policy.boot_interval(),
    }


def measure(station: Station, connector: ConnectorState, readings: list[Reading]) -> None:
    """Merge a MeterValues' readings into the connector's measurement, and feed the
    station's clock estimate with the newest of their timestamps (parsed once, there)."""
    measurement = merge_readings(connector.measurement, readings)
    connector.measure(measurement)
    if readings and measurement.timestamp is not None:
        station.clock.stamped_at(measurement.timestamp)


def common_handlers(station: Station, acknowledged: Iterable[str]) -> dict[str, Handler]:
    """Heartbeat, DataTransfer (no vendor extension is known) and the `acknowledged`
    notifications, which are answered with an empty payload."""

    def heartbeat(_: object) -> Payload:
        now = datetime.now(UTC)
        station.last_heartbeat = now
        return {"currentTime": ocpp_time(now)}

    def data_transfer(p: Payload) -> Payload:
        return {"status": "UnknownVendorId"}

    def acknowledge(p: Payload) -> Payload:
        return {}

    return {
        "Heartbeat": Immediate(heartbeat, hot=heartbeat),
        "DataTransfer": Immediate(data_transfer),
        **dict.fromkeys(acknowledged, Immediate(acknowledge)),
    }
