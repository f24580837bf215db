"""The site's devices get their links as their firmware profiles describe them."""

from __future__ import annotations

from hubgate.devices.profile_driver import ProfileCharger
from hubgate.modbus.pool import ModbusPool
from hubgate.ocpp.registry import StationRegistry
from hubgate.runtime.site_devices import build_site_devices
from tests.support.loop_site import site_config
from tests.support.toml_tables import battery_20kwh, modbus


def test_a_device_whose_profile_needs_a_pause_between_requests_gets_it() -> None:
    # huawei-sun2000: [transport] inter_request_delay_ms = 50 (evcc's template).
    site = site_config(battery_20kwh(modbus("huawei-sun2000", port=1507)))
    devices = build_site_devices(site, StationRegistry.from_site(site), ModbusPool())
    assert devices.battery is not None
    assert devices.battery.driver.link.delay_s == 0.05
    charger = devices.chargers["cp-1", 1]
    assert isinstance(charger, ProfileCharger)
    assert charger.link.delay_s == 0.0  # alfen-eve: none


def test_devices_of_one_model_share_its_profile() -> None:
    site = site_config()  # three alfen-eve chargers
    devices = build_site_devices(site, StationRegistry.from_site(site), ModbusPool())
    chargers = [devices.chargers[f"cp-{n}", 1] for n in (1, 2, 3)]
    assert all(isinstance(c, ProfileCharger) for c in chargers)
    profiles = {id(c.profile) for c in chargers if isinstance(c, ProfileCharger)}
    assert len(profiles) == 1
