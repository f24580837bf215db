"""A SunSpec hybrid inverter's battery (models 1 + 103 + 124) against its simulated device:
percent limits of WChaMax, StorCtl_Mod, and InOutWRte_RvrtTms as the device-side lease."""

from __future__ import annotations

import pytest
import trio

from hubgate.devices.errors import DeviceError, FailsafeNotAppliedError
from hubgate.devices.profile_driver import ProfileDevice
from hubgate.devices.storage import BatteryDevice, battery_state
from hubgate.modbus.codec import FieldValue
from hubgate.profiles.model import Quantity
from hubgate.profiles.plan import resolve_switch
from hubgate.sim.register_feed import FedDevice, battery_limits_w, battery_setpoint_kw
from tests.support.drivers import PROFILES, rig

PROFILE = PROFILES["sunspec-hybrid-storage"]
RATING_W = 5000.0
LEASE_S = 60.0


async def storctl_mod(driver: ProfileDevice) -> FieldValue:
    """StorCtl_Mod as the device answers it."""
    enable = PROFILE.commands.enable
    assert enable is not None
    return await driver.read_value(resolve_switch(PROFILE, "enable", enable, await driver.blocks()))


async def revert_timeout(driver: ProfileDevice) -> FieldValue:
    """InOutWRte_RvrtTms as the device answers it."""
    timeout = PROFILE.failsafe.timeout
    assert timeout is not None
    return await driver.read_value(await driver.resolve("timeout", timeout))


async def test_reads_soc_and_the_ac_power_as_the_battery_power() -> None:
    with trio.fail_after(10):
        async with rig(PROFILE) as r:
            r.sim.set(Quantity.SOC, 63.5)
            r.sim.set(Quantity.POWER_TOTAL, -2500.0)  # 2.5 kW out of the inverter
            state = battery_state(await BatteryDevice(r.driver).read())
            assert state is not None
            assert state.soc_percent == pytest.approx(63.5)
            assert state.power_w == pytest.approx(2500.0)  # discharging


async def test_a_command_writes_percent_of_wchamax_and_activates_both_limits() -> None:
    with trio.fail_after(10):
        async with rig(PROFILE) as r:
            r.sim.set(Quantity.BATTERY_MAX_CHARGE_POWER, RATING_W)
            battery = BatteryDevice(r.driver, lease_s=LEASE_S)
            result = await battery.command(-1250.0)  # charge 1.25 kW = 25 %
            assert result.power_w == pytest.approx(-1250.0)
            assert r.sim.setpoints == pytest.approx(
                {"charge_power_limit": 25.0, "discharge_power_limit": 0.0}
            )
            assert await storctl_mod(r.driver) == 3  # bit 0 charge, bit 1 discharge limit active
            assert battery_setpoint_kw(FedDevice(r.sim)) == pytest.approx(1.25)
            result = await battery.command(4000.0)  # discharge 80 %
            assert r.sim.setpoints["discharge_power_limit"] == pytest.approx(80.0)
            assert battery_setpoint_kw(FedDevice(r.sim)) == pytest.approx(-4.0)
            odd = await battery.command(1234.0)  # 24.68 %: whole percent, rounded down
            assert odd.discharge_w == pytest.approx(1200.0)


async def test_the_lease_is_written_to_the_revert_timeout_and_kept() -> None:
    with trio.fail_after(10):
        async with rig(PROFILE) as r:
            r.sim.set(Quantity.BATTERY_MAX_CHARGE_POWER, RATING_W)
            assert await revert_timeout(r.driver) == 0  # the device's default: never revert
            battery = BatteryDevice(r.driver, lease_s=LEASE_S)
            await battery.command(0.0)
            assert await revert_timeout(r.driver) == pytest.approx(LEASE_S)
            timeout = PROFILE.failsafe.timeout
            assert timeout is not None
            spec = await r.driver.resolve("timeout", timeout)
            await r.driver.write_value(spec, 0, multiple=False)  # restarted at its default
            await battery.command(1000.0)
            assert await revert_timeout(r.driver) == pytest.approx(LEASE_S)


async def test_a_lease_the_device_cannot_hold_is_an_error() -> None:
    with trio.fail_after(10):
        async with rig(PROFILE) as r:
            r.sim.set(Quantity.BATTERY_MAX_CHARGE_POWER, RATING_W)
            too_short = BatteryDevice(r.driver, lease_s=0.4)  # whole seconds: 0 = never
            with pytest.raises(FailsafeNotAppliedError, match="read back 0"):
                await too_short.command(1000.0)
            too_long = BatteryDevice(r.driver, lease_s=70_000)  # beyond the u16 register
            with pytest.raises(FailsafeNotAppliedError, match="cannot hold"):
                await too_long.command(1000.0)
            assert r.sim.setpoints == {}  # no limit written without the lease


async def test_without_a_rating_a_percent_limit_cannot_be_set() -> None:
    with trio.fail_after(10):
        async with rig(PROFILE) as r:
            r.sim.set(Quantity.BATTERY_MAX_CHARGE_POWER, None)  # WChaMax not implemented
            with pytest.raises(DeviceError, match="battery_max_charge_power reads None"):
                await BatteryDevice(r.driver).command(1000.0)


async def test_a_dead_gateway_lets_the_battery_revert() -> None:
    """Commands re-sent within the revert time hold the limits; silence reverts them and the
    simulated battery goes back to its own control (idle); the next command takes over again."""
    with trio.fail_after(10):
        async with rig(PROFILE) as r:
            r.sim.set(Quantity.BATTERY_MAX_CHARGE_POWER, RATING_W)
            fed = FedDevice(r.sim)
            battery = BatteryDevice(r.driver, lease_s=LEASE_S)
            await battery.command(3000.0)
            for _ in range(3):  # the control loop re-sends every half lease
                r.clock.advance(LEASE_S / 2)
                await battery.command(3000.0)
                assert battery_setpoint_kw(fed) == pytest.approx(-3.0)
            r.clock.advance(LEASE_S - 1)
            assert battery_setpoint_kw(fed) == pytest.approx(-3.0)
            r.clock.advance(2)  # the gateway died: no command within the revert time
            assert battery_setpoint_kw(fed) == 0.0
            assert r.sim.failsafe_active
            assert battery_limits_w(fed) == pytest.approx(  # reverted to 100 %: no limit
                {"charge_power_limit": RATING_W, "discharge_power_limit": RATING_W}
            )
            await battery.command(-2000.0)  # back: the next command takes over
            assert not r.sim.failsafe_active
            assert battery_setpoint_kw(fed) == pytest.approx(2.0)


async def test_storctl_mod_off_hands_control_back() -> None:
    with trio.fail_after(10):
        async with rig(PROFILE) as r:
            r.sim.set(Quantity.BATTERY_MAX_CHARGE_POWER, RATING_W)
            fed = FedDevice(r.sim)
            driver = r.driver
            await BatteryDevice(driver).command(2000.0)
            assert battery_setpoint_kw(fed) == pytest.approx(-2.0)
            enable = PROFILE.commands.enable
            assert enable is not None
            spec = resolve_switch(PROFILE, "enable", enable, await driver.blocks())
            await driver.write(spec, [enable.values["off"]], multiple=False)
            assert battery_limits_w(fed) == {}
            assert battery_setpoint_kw(fed) == 0.0
