"""The battery and PV devices against every storage and inverter profile, served by pymodbus."""

from __future__ import annotations

import math

import pytest
import trio

from hubgate.devices.errors import DeviceError
from hubgate.devices.pv import pv_power_w
from hubgate.devices.storage import BatteryDevice, battery_state
from hubgate.profiles.model import DeviceKind, Quantity
from hubgate.sim.register_feed import FedDevice, battery_limits_w
from tests.support.drivers import PROFILES, rig

BATTERIES = sorted(n for n, p in PROFILES.items() if p.kind is DeviceKind.BATTERY)
COMMANDED = [n for n in BATTERIES if PROFILES[n].commands.setpoints]
BOTH_WAYS = [
    n
    for n in COMMANDED
    if PROFILES[n].commands.charge_power_limit and PROFILES[n].commands.discharge_power_limit
]
WITH_POWER = [
    n for n in BATTERIES if {Quantity.BATTERY_POWER, Quantity.POWER_TOTAL} & set(PROFILES[n].fields)
]
PV = sorted(n for n, p in PROFILES.items() if Quantity.PV_POWER in p.fields)


def test_the_profiles_cover_every_case() -> None:
    assert "sunspec-battery" in BATTERIES
    assert "sunspec-battery" not in COMMANDED  # read-only
    assert "sunspec-storage" in COMMANDED
    assert "sunspec-storage" not in BOTH_WAYS  # charge limit only
    assert {"sma-sunny-boy-storage", "huawei-sun2000", "sunspec-hybrid-storage"} <= set(BOTH_WAYS)
    assert "sunspec-hybrid-storage" in WITH_POWER


@pytest.mark.parametrize("name", WITH_POWER)
async def test_reads_soc_and_power_discharging_positive(name: str) -> None:
    profile = PROFILES[name]
    with trio.fail_after(10):
        async with rig(profile) as r:
            r.sim.set(Quantity.SOC, 42.0)
            has_power = Quantity.BATTERY_POWER in profile.fields
            r.sim.set(Quantity.BATTERY_POWER if has_power else Quantity.POWER_TOTAL, 1500.0)
            state = battery_state(await BatteryDevice(r.driver).read())
            assert state is not None
            assert state.soc_percent == pytest.approx(42.0, abs=0.1)
            # battery_power is positive discharging; power_total positive drawn (charging)
            assert state.power_w == pytest.approx(1500.0 if has_power else -1500.0, abs=1)


async def test_a_battery_without_a_power_reading_has_no_state() -> None:
    """SunSpec model 124 alone has no power register: the loop treats it as unknown."""
    assert "sunspec-storage" not in WITH_POWER
    with trio.fail_after(10):
        async with rig(PROFILES["sunspec-storage"]) as r:
            r.sim.set(Quantity.SOC, 42.0)
            assert battery_state(await r.driver.read()) is None


RATING_W = 5000.0
"""WChaMax served where limits are in percent of it (3 kW is 60 %, 2 kW 40 %)."""


@pytest.mark.parametrize("name", BOTH_WAYS)
async def test_signed_command_goes_through_both_limits(name: str) -> None:
    profile = PROFILES[name]
    with trio.fail_after(10):
        async with rig(profile) as r:
            if Quantity.BATTERY_MAX_CHARGE_POWER in profile.fields:
                r.sim.set(Quantity.BATTERY_MAX_CHARGE_POWER, RATING_W)
            fed = FedDevice(r.sim)  # the simulator's reading of the limits, in W
            battery = BatteryDevice(r.driver)
            assert battery.max_charge_w > 0
            assert battery.max_discharge_w > 0
            discharging = await battery.command(3000.0)
            assert discharging.power_w == pytest.approx(3000.0)
            assert battery_limits_w(fed) == pytest.approx(
                {"charge_power_limit": 0.0, "discharge_power_limit": 3000.0}
            )
            charging = await battery.command(-2000.0)
            assert charging.power_w == pytest.approx(-2000.0)
            assert battery_limits_w(fed) == pytest.approx(
                {"charge_power_limit": 2000.0, "discharge_power_limit": 0.0}
            )
            idle = await battery.command(0.0)
            assert idle.power_w == 0.0
            capped = await battery.command(-1e9)  # clamped to the profile's or device's bound
            percent = math.isinf(battery.max_charge_w)  # bounded by the device's own rating
            assert capped.charge_w == (RATING_W if percent else battery.max_charge_w)


async def test_charge_only_battery_cannot_be_told_to_discharge() -> None:
    with trio.fail_after(10):
        async with rig(PROFILES["sunspec-storage"]) as r:
            battery = BatteryDevice(r.driver)
            assert battery.max_discharge_w == 0
            assert (await battery.command(-1500.0)).power_w == pytest.approx(-1500.0)
            with pytest.raises(DeviceError, match="cannot be told to discharge"):
                await battery.command(1000.0)


async def test_read_only_battery_cannot_be_commanded() -> None:
    with trio.fail_after(10):
        async with rig(PROFILES["sunspec-battery"]) as r:
            battery = BatteryDevice(r.driver)
            assert battery.max_charge_w == battery.max_discharge_w == 0
            with pytest.raises(DeviceError, match="no battery power commands"):
                await battery.command(0.0)


@pytest.mark.parametrize("name", PV)
async def test_pv_power_from_an_inverter(name: str) -> None:
    profile = PROFILES[name]
    with trio.fail_after(10):
        async with rig(profile) as r:
            r.sim.set(Quantity.PV_POWER, 2100.0)
            if Quantity.POWER_TOTAL in profile.fields:
                r.sim.set(Quantity.POWER_TOTAL, -2000.0)  # AC output, exported
            assert pv_power_w(await r.driver.read()) == pytest.approx(2100.0, abs=10)
