"""A charger's watchdog is fed within half the timeout hubgate configures it with, from the
start: the control loop schedules each charger's first heartbeat from the period it reads
before any failsafe is configured. The KEBA P30's timeout (5018, read back at 1602) is
re-written as its heartbeat (evcc's period: 30 s); the test cluster configures 4 s. The
station is its profile's simulated device on pymodbus, driven over Modbus TCP."""

from __future__ import annotations

import trio

from hubgate.devices.profile_driver import ProfileCharger, driver_for
from hubgate.modbus.master import ModbusDevice
from hubgate.modbus.tcp_master import open_tcp_master
from hubgate.sim.modbus_box import serve
from hubgate.sim.simulated_device import SimulatedDevice
from tests.support.drivers import PROFILES, FakeClock

KEBA = PROFILES["keba-p30"]


async def test_a_keba_is_fed_within_half_the_lease_it_is_configured_with_from_the_start() -> None:
    """Fed at the period read before the 4 s timeout was configured, the station never falls
    back to its own 0 A over three timeouts (fed every 30 s it did, and its EV stopped)."""
    clock = FakeClock()
    sim = SimulatedDevice(KEBA, clock=clock)
    with trio.fail_after(10), serve(sim) as port:
        async with open_tcp_master("127.0.0.1", port, timeout_s=2.0, retries=0) as master:
            driver = driver_for("cp", KEBA, ModbusDevice(master, sim.unit), lease_s=4.0)
            assert isinstance(driver, ProfileCharger)
            period = driver.heartbeat_period_s
            assert period == 2.0  # not configured yet: half the lease it will be
            await driver.configure_failsafe(4.0, 6.0)
            assert sim.timeout_s() == 4.0
            await driver.set_limit(16.0, 3)
            for _ in range(6):
                clock.advance(period)
                await driver.heartbeat()
                assert not sim.failsafe_active
            assert sim.applied_limit() == 16.0
            assert driver.heartbeat_period_s == 2.0  # as configured and read back


async def test_a_new_leader_feeds_a_lapsed_keba_before_its_first_setpoint() -> None:
    """The old leader gone for longer than the timeout, the station runs on its own 0 A
    (once on its fallback, only a setpoint written while it is fed lifts it). The new
    leader's verification finds the registers in place and writes none of them, but feeds
    the watchdog: the setpoint after it holds (before, it was undone at the next request
    and the EV stayed paused until a setpoint changed)."""
    clock = FakeClock()
    sim = SimulatedDevice(KEBA, clock=clock)
    with trio.fail_after(10), serve(sim) as port:
        async with open_tcp_master("127.0.0.1", port, timeout_s=2.0, retries=0) as master:
            old, new = (
                driver_for(name, KEBA, ModbusDevice(master, sim.unit), lease_s=4.0)
                for name in ("old", "new")
            )
            assert isinstance(old, ProfileCharger)
            assert isinstance(new, ProfileCharger)
            await old.configure_failsafe(4.0, 6.0)
            await old.set_limit(16.0, 3)
            clock.advance(10.0)  # the old leader is gone
            await new.read()
            assert sim.failsafe_active
            await new.configure_failsafe(4.0, 6.0)
            await new.set_limit(16.0, 3)
            await new.read()
            assert not sim.failsafe_active
            assert sim.applied_limit() == 16.0
