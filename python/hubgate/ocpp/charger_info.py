"""An OCPP charger as the API shows it: capabilities, provisioning and whether it follows."""

from __future__ import annotations

from collections.abc import Sequence

from hubgate.ocpp.device import OcppCharger
from hubgate.ocpp.station_care import StationCare
from hubgate.state import ChargerCapabilitiesView, ChargerInfo, LimitTrust, ProvisioningView

_STATUS = {True: "following", False: "not following", None: "unverified"}


def limit_trust(charger: OcppCharger) -> LimitTrust:
    """One connector's trust and lease."""
    check = charger.limit_check
    lease = charger.lease
    return LimitTrust(
        connector=charger.connector_id,
        status=_STATUS[check.following],
        evidence=check.evidence,
        lease=None if lease is None else (lease.mode.value if lease.mode else "none"),
        purpose=None if lease is None else lease.purpose,
        shared=charger.shares_station_limit,
    )


def charger_info(care: StationCare, connectors: Sequence[OcppCharger]) -> ChargerInfo:
    """The charger of `care`, with its `connectors` (the control loop's chargers)."""
    station = care.station
    capabilities = care.capabilities
    boot = station.boot
    provisioning = care.provisioning
    return ChargerInfo(
        id=station.admission.charger_id,
        identity=station.identity,
        version=None if station.version is None else station.version.value,
        connected=station.session is not None,
        vendor=None if boot is None else boot.vendor,
        model=None if boot is None else boot.model,
        firmware=None if boot is None else boot.firmware_version,
        connections=station.connections,
        boots=station.boots,
        boot_delay_s=None if station.boot_delay_s is None else round(station.boot_delay_s, 1),
        capabilities=ChargerCapabilitiesView(
            rate_units=capabilities.rate_units,
            max_stack_level=capabilities.max_stack_level,
            max_profiles=capabilities.max_profiles,
            max_periods=capabilities.max_periods,
            phase_switch=capabilities.phase_switch,
            clock_offset_s=None
            if capabilities.clock_offset_s is None
            else round(capabilities.clock_offset_s, 1),
            honours_valid_to=capabilities.honours_valid_to,
            source=care.source,
        ),
        discovery_error=care.discovery_error,
        provisioning=None
        if provisioning is None
        else ProvisioningView(
            interval_s=provisioning.interval_s,
            measurands=provisioning.measurands,
            accepted=dict(provisioning.accepted),
            rejected=dict(provisioning.rejected),
        ),
        connectors=tuple(limit_trust(c) for c in connectors),
    )
