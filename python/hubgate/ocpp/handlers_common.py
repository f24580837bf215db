"""What the 1.6 and 2.x handlers answer alike: boot, heartbeat, data transfer, notifications."""

from __future__ import annotations

from collections.abc import Iterable

from hubgate.ocpp.meter_values import parse_timestamp
from hubgate.ocpp.policy import CsmsPolicy, ocpp_now
from hubgate.ocpp.registry import BootInfo, Station
from hubgate.ocpp.rpc import Payload
from hubgate.ocpp.session import Handler, Immediate


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


def stamp_latest(station: Station, meter_values: Iterable[Payload]) -> None:
    """Feed the station's clock estimate with the newest of its MeterValues' timestamps."""
    stamps = [
        parse_timestamp(mv["timestamp"])
        for mv in meter_values
        if isinstance(mv.get("timestamp"), str)
    ]
    if stamps:
        station.clock.stamped_at(max(stamps))


def common_handlers(station: Station, acknowledged: Iterable[str]) -> dict[str, Handler]:
    """Heartbeat, DataTransfer (no vendor extension is known) and the `acknowledged`
    notifications, which are answered with an empty payload."""

    def heartbeat(p: Payload) -> Payload:
        now = ocpp_now()
        station.last_heartbeat = parse_timestamp(now)
        return {"currentTime": now}

    def data_transfer(p: Payload) -> Payload:
        return {"status": "UnknownVendorId"}

    def acknowledge(p: Payload) -> Payload:
        return {}

    return {
        "Heartbeat": Immediate(heartbeat),
        "DataTransfer": Immediate(data_transfer),
        **dict.fromkeys(acknowledged, Immediate(acknowledge)),
    }
