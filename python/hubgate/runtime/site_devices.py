"""The one place a site's devices are built: OCPP connectors and profile-driven Modbus devices.

OCPP chargers become one `OcppCharger` per connector (the whole station's
limit for single-connector chargers), the connectors of a station sharing its
`StationCare` (capabilities kept in `[ocpp] capabilities_path`, corrected by the
charger's `ocpp.capabilities`, meter values every `sample_interval_s(cycle_s)`); a Modbus charger's connectors are the
units from its `unit` upwards, each driven by its firmware profile; meters, the
grid operator's box, the battery and PV inverters are profile-driven devices too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path

from hubgate.config.model import GridOperatorSource, ModbusEndpoint, SiteConfig
from hubgate.control.grid_operator import heartbeat_timeout_s
from hubgate.control.sensors import SiteDevices
from hubgate.devices.model import Charger
from hubgate.devices.profile_driver import ProfileCharger, ProfileDevice, driver_for
from hubgate.devices.pv import PvDevice
from hubgate.devices.storage import BatteryDevice
from hubgate.modbus.master import ModbusDevice
from hubgate.modbus.pool import ModbusPool
from hubgate.ocpp.charger_info import charger_info
from hubgate.ocpp.device import OcppCharger
from hubgate.ocpp.provisioning import sample_interval_s
from hubgate.ocpp.registry import StationRegistry
from hubgate.ocpp.smart_charging import LeaseSettings
from hubgate.ocpp.station_care import CapabilityStore, StationCare
from hubgate.profiles.loader import load_named
from hubgate.profiles.model import Profile
from hubgate.state import ChargerInfo

ProfileOf = Callable[[str], Profile]
"""A profile by name, loaded once per build (`cache(load_named)`): the devices of one model
share it (profiles are frozen; about 30 KiB of models each, 110 Modbus devices on depot-200)."""


def _modbus(
    device_id: str, endpoint: ModbusEndpoint, pool: ModbusPool, profile_of: ProfileOf
) -> ProfileDevice:
    profile = profile_of(endpoint.profile)
    return driver_for(device_id, profile, _link(endpoint, profile, pool))


def _link(endpoint: ModbusEndpoint, profile: Profile, pool: ModbusPool) -> ModbusDevice:
    """The device's link, pipelining reads and pausing between requests as its profile says."""
    transport = profile.transport
    return pool.device(endpoint, max_in_flight=transport.max_in_flight, delay_s=transport.delay_s)


def station_cares(site: SiteConfig, registry: StationRegistry) -> dict[str, StationCare]:
    """One `StationCare` per OCPP charger (by charger id), sharing the capability file."""
    path = site.ocpp.capabilities_path
    store = CapabilityStore(Path(path)) if path is not None else None
    interval = sample_interval_s(site.control.cycle_s)
    stations = {station.admission.charger_id: station for station in registry}
    return {
        charger.id: StationCare(
            stations[charger.id],
            override=charger.ocpp.capabilities,
            store=store,
            sample_interval_s=interval,
        )
        for charger in site.chargers
        if charger.ocpp is not None
    }


def charger_infos(
    cares: Mapping[str, StationCare], devices: SiteDevices
) -> tuple[ChargerInfo, ...]:
    """Every OCPP charger as the API shows it."""
    connectors: dict[str, list[OcppCharger]] = {charger_id: [] for charger_id in cares}
    for (charger_id, _), charger in devices.chargers.items():
        if isinstance(charger, OcppCharger) and charger_id in connectors:
            connectors[charger_id].append(charger)
    return tuple(charger_info(care, connectors[cid]) for cid, care in cares.items())


def _pv_devices(site: SiteConfig, pool: ModbusPool, profile_of: ProfileOf) -> dict[str, PvDevice]:
    """The PV inverters."""
    return {
        unit.id: PvDevice(
            _modbus(unit.id, unit.modbus, pool, profile_of), lease_s=site.control.lease_s
        )
        for unit in site.pv
    }


def build_site_devices(
    site: SiteConfig,
    registry: StationRegistry,
    pool: ModbusPool,
    cares: Mapping[str, StationCare] | None = None,
) -> SiteDevices:
    """Every device the control loop reads or commands (`cares`: `station_cares`)."""
    if cares is None:
        cares = station_cares(site, registry)
    control = site.control
    settings = LeaseSettings(
        lease_s=control.lease_s,
        renew_before_s=control.lease_s / 3,
        failsafe_current_a=control.failsafe_current_a,
    )
    stations = {station.admission.charger_id: station for station in registry}
    profile_of: ProfileOf = cache(load_named)
    chargers: dict[tuple[str, int], Charger] = {}
    for charger in site.chargers:
        for position, connector in enumerate(charger.connectors):
            key = (charger.id, connector.id)
            if charger.ocpp is not None:
                chargers[key] = OcppCharger(
                    stations[charger.id],
                    connector_id=connector.id,
                    whole_station=len(charger.connectors) == 1,
                    settings=settings,
                    care=cares[charger.id],
                    voltage_v=site.grid.voltage_v,
                    dc=connector.dc,
                )
            elif charger.modbus is not None:
                endpoint = charger.modbus.model_copy(
                    update={"unit": charger.modbus.unit + position}
                )
                profile = profile_of(endpoint.profile)
                device = driver_for(
                    charger.id,
                    profile,
                    _link(endpoint, profile, pool),
                    voltage_v=site.grid.voltage_v,
                    dc=connector.dc,
                    lease_s=control.lease_s,
                )
                if not isinstance(device, ProfileCharger):
                    raise ValueError(
                        f"charger {charger.id}: profile {endpoint.profile!r} is not a charger profile"
                    )
                chargers[key] = device
    meters = {meter.id: _modbus(meter.id, meter.modbus, pool, profile_of) for meter in site.meters}
    operator = site.grid_operator
    box = None
    feed_in_rule = {}
    heartbeat_s = None
    if (
        operator is not None
        and operator.modbus is not None
        and operator.source in (GridOperatorSource.MODBUS_DEVICE, GridOperatorSource.RELAY_CONTACTS)
    ):
        box = _modbus("grid-operator", operator.modbus, pool, profile_of)
        rule = box.profile.grid_operator
        feed_in_rule = dict(rule.feed_in_percent) if rule is not None else {}
        heartbeat_s = heartbeat_timeout_s(operator, box.profile)
    battery = site.battery
    return SiteDevices(
        chargers=chargers,
        meters=meters,
        grid_operator=box,
        battery=None
        if battery is None
        else BatteryDevice(
            _modbus(battery.id, battery.modbus, pool, profile_of), lease_s=site.control.lease_s
        ),
        pv=_pv_devices(site, pool, profile_of),
        feed_in_rule=feed_in_rule,
        grid_operator_heartbeat_s=heartbeat_s,
    )
