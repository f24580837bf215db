"""An Alfen's fallback is what the station holds, not what hubgate asks: the safe current
(1212) an installer set in ACE Service Installer, read by the driver; the limit validity
(1208) counts down from each write of 1210 and the socket runs at the safe current once it
reaches 0 (Alfen's Modbus manual; register-maps.md 2.2). The twin is the profile's
simulated device on pymodbus, driven over Modbus TCP."""

from __future__ import annotations

import logging

import pytest
import trio

from hubgate.devices.model import HeldCurrent
from hubgate.devices.profile_driver import ProfileCharger
from hubgate.profiles.model import Quantity
from tests.support.drivers import PROFILES, charger, rig

SET_IN_ACE = "ACE Service Installer (Active load balancing: Safe current)"


@pytest.mark.parametrize(
    ("name", "register", "maximum_a"),
    [("alfen-eve", 1212, 32.0), ("webasto-next", 2000, 32.0), ("alfen-eve-scn", 1429, 250.0)],
)
async def test_a_held_fallback_counts_at_the_maximum_until_read_then_as_read(
    name: str, register: int, maximum_a: float
) -> None:
    with trio.fail_after(10):
        async with rig(PROFILES[name]) as r:
            r.sim.set(Quantity.SAFE_CURRENT, 16.0)
            driver = charger(r)
            assert driver.fixed_failsafe_a(6.0) == maximum_a  # not read: the worst it allows
            assert driver.held_fallback() is None
            await driver.configure_failsafe(60.0, 6.0)
            held = driver.held_fallback()
            assert held is not None
            assert held.current_a == 16.0
            assert held.where.startswith(f"register {register}")
            assert driver.fixed_failsafe_a(6.0) == 16.0
            assert r.sim.value("failsafe.fallback") == 16.0  # read-only: nothing written


async def verified(name: str, safe_current_a: float, asked_a: float = 6.0) -> ProfileCharger:
    """The profile's driver after it configured its failsafe, asked `asked_a`, on a twin
    whose station holds `safe_current_a`."""
    with trio.fail_after(10):
        async with rig(PROFILES[name]) as r:
            r.sim.set(Quantity.SAFE_CURRENT, safe_current_a)
            driver = charger(r)
            await driver.configure_failsafe(60.0, asked_a)
    return driver


async def test_the_alfen_safe_current_is_named_where_it_is_set() -> None:
    driver = await verified("alfen-eve", 32.0)
    assert driver.held_fallback() == HeldCurrent(32.0, f"register 1212, set in {SET_IN_ACE}")


async def test_a_nan_safe_current_is_not_read_as_a_value() -> None:
    """Unavailable Alfen registers read NaN (the profile's quirks): no value read, so the
    most the station allows still counts."""
    driver = await verified("alfen-eve", float("nan"))
    assert driver.held_fallback() is None
    assert driver.fixed_failsafe_a(6.0) == 32.0


@pytest.mark.parametrize("name", ["alfen-eve", "webasto-next", "alfen-eve-scn"])
async def test_a_held_fallback_other_than_asked_is_no_warning(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Until read, hubgate counts a held fallback at the most the station allows, and asks
    that: the 6 A read is what the station does, not a setting that did not hold (the demo
    logged 'the fallback is fixed at 6.0, not 32.0' for every connector). The control loop
    counts it and says what it means for the site (tests/control/test_held_fallback.py)."""
    driver = await verified(name, 6.0, asked_a=32.0)
    assert driver.held_fallback() is not None
    assert driver.fixed_failsafe_a(32.0) == 6.0
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert [line for line in warned if "fallback" in line] == []


async def test_the_validity_counts_down_from_each_write_and_the_safe_current_follows() -> None:
    """1208 reads 0 before the first write; each write of 1210 restarts it at the validity
    time set on the station (here 10 s, as evcc-io/evcc#12492 found one); at 0 the socket
    runs at its safe current until the next write."""
    with trio.fail_after(10):
        async with rig(PROFILES["alfen-eve"]) as r:
            r.sim.set(Quantity.SAFE_CURRENT, 32.0)
            r.sim.device_timeout_s = 10.0
            driver = charger(r)
            assert isinstance(driver, ProfileCharger)

            async def validity() -> float | None:
                return (await driver.read()).values[Quantity.LIMIT_VALIDITY]

            assert await validity() == 0.0  # nothing written yet
            await driver.set_limit(8.0, 3)
            assert await validity() == 10.0
            r.clock.advance(4.2)
            assert await validity() == 6.0
            assert r.sim.applied_limit() == 8.0
            r.clock.advance(6.0)
            assert await validity() == 0.0  # lapsed: on its safe current
            assert r.sim.applied_limit() == 32.0
            assert (await driver.read()).values[Quantity.APPLIED_CURRENT_LIMIT] == 32.0
            await driver.heartbeat()  # the setpoint re-written: valid again, at 8 A
            assert await validity() == 10.0
            assert r.sim.applied_limit() == 8.0


async def test_the_heartbeat_comes_within_half_the_validity_read() -> None:
    """The validity time is set on the station alone (documented 60 s; 20 s here): once a
    read shows 1208 counting down from 20 s, the setpoint is re-written every 10 s at most
    (not the profile's 25 s), and the station never falls back while hubgate is there."""
    with trio.fail_after(10):
        async with rig(PROFILES["alfen-eve"]) as r:
            r.sim.set(Quantity.SAFE_CURRENT, 6.0)
            r.sim.device_timeout_s = 20.0
            driver = charger(r)
            assert isinstance(driver, ProfileCharger)
            await driver.configure_failsafe(60.0, 6.0)
            assert driver.heartbeat_period_s == 25.0  # the profile's, under the 60 s default
            await driver.set_limit(16.0, 3)
            r.clock.advance(1.0)
            await driver.read()  # 19 s left
            assert driver.heartbeat_period_s == 9.5
            for _ in range(6):  # three validities long
                r.clock.advance(driver.heartbeat_period_s)
                await driver.heartbeat()
                await driver.read()
                assert not r.sim.failsafe_active
            assert driver.heartbeat_period_s == 10.0  # read right after a re-write: 20 s
            assert r.sim.applied_limit() == 16.0
