"""What the 1.6 and 2.x handlers answer alike: boot, heartbeat, data transfer, notifications."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from hubgate.ocpp.meter_values import Reading, merge_readings, readings
from hubgate.ocpp.policy import CsmsPolicy, ocpp_now, ocpp_time
from hubgate.ocpp.registry import BootInfo, ConnectorState, Station
from hubgate.ocpp.rpc import Payload
from hubgate.ocpp.session import Handler, Immediate
from hubgate.ocpp.versions import OcppVersion

LOG = logging.getLogger("hubgate.ocpp")

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


def station_readings(
    station: Station, meter_values: list[dict[str, Any]], version: OcppVersion
) -> list[Reading]:
    """The readings of a `meterValue` list from `station` (the Python path's: the Rust
    reader leaves a frame with a value that is not a finite number to it). Such samples
    are skipped and counted; the station's first one is logged."""
    skipped: list[str] = []
    read = readings(meter_values, version, skipped)
    if skipped:
        if not station.non_finite_samples:
            LOG.warning(
                "%s: %s value not a finite number once scaled: sample skipped, message kept "
                "(logged once per station)",
                station.identity,
                skipped[0],
            )
        station.non_finite_samples += len(skipped)
    return read


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
