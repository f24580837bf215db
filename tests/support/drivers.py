"""Helpers for driver tests: every profile, a steppable clock, a driver on a served device."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from hubgate.devices.profile_driver import ProfileCharger, ProfileDevice, driver_for
from hubgate.modbus.master import ModbusDevice
from hubgate.modbus.tcp_master import open_tcp_master
from hubgate.profiles import Profile
from hubgate.profiles.model import DataType, DeviceKind, Quantity, Setpoint
from hubgate.profiles.plan import RegisterSpec
from hubgate.sim.modbus_box import serve
from hubgate.sim.simulated_device import SimulatedDevice
from tests.support.simulated_devices import PROFILES, FakeClock

__all__ = [
    "CHARGERS",
    "PROFILES",
    "FakeClock",
    "Rig",
    "a_current",
    "charger",
    "distinct_value",
    "limit_setpoint",
    "per_amp",
    "rig",
]

CHARGERS = sorted(n for n, p in PROFILES.items() if p.kind is DeviceKind.CHARGER)
"""Every charger profile, by name."""


@dataclass
class Rig:
    """A simulated device, its clock, and hubgate's driver of it."""

    sim: SimulatedDevice
    clock: FakeClock
    driver: ProfileDevice


@asynccontextmanager
async def rig(profile: Profile) -> AsyncIterator[Rig]:
    """The profile's simulated device served on 127.0.0.1:0, driven through a `TcpMaster`."""
    clock = FakeClock()
    sim = SimulatedDevice(profile, clock=clock)
    with serve(sim) as port:
        async with open_tcp_master("127.0.0.1", port, timeout_s=2.0, retries=0) as master:
            link = ModbusDevice(master, sim.unit)
            yield Rig(sim, clock, driver_for(f"dev-{profile.name}", profile, link))


def distinct_value(index: int, spec: RegisterSpec, exponent: int) -> float | str | None:
    """A value the field can hold, different per field; every third field with a sentinel
    is "not available"."""
    if spec.sentinel and index % 3 == 0:
        return None
    if spec.function.is_bit:
        return float(index % 2)
    if spec.type is DataType.STRING:
        return "H" if spec.charset == "utf-16-be" else f"H{index % 10}"
    raw = 100 + index
    if spec.mask is not None:
        raw = min(raw, spec.mask)
    power = 10.0**exponent if spec.scale_factor_address is not None else 1.0
    return raw * spec.scale * power + spec.offset


def derived_currents(profile: Profile) -> set[str]:
    """The phase currents the driver adds to a reading of a charger that measures none
    from its power (`devices.derived_current`); none for other profiles."""
    fields = profile.fields.keys()
    if profile.kind is not DeviceKind.CHARGER or Quantity.POWER_TOTAL not in fields:
        return set()
    currents = {Quantity.CURRENT_L1, Quantity.CURRENT_L2, Quantity.CURRENT_L3}
    return set() if currents & fields else {str(q) for q in currents}


def charger(r: Rig) -> ProfileCharger:
    assert isinstance(r.driver, ProfileCharger)
    return r.driver


def limit_setpoint(profile: Profile) -> Setpoint:
    """The charger's setpoint: its current limit, else its power limit."""
    setpoint = profile.commands.current_limit or profile.commands.power_limit
    assert setpoint is not None
    return setpoint


def per_amp(profile: Profile) -> float:
    """Setpoint units per ampere on three phases: 1 for A, 3 x 230 V for W."""
    return 1.0 if profile.commands.current_limit is not None else 3 * 230.0


def a_current(profile: Profile) -> float:
    """A current the profile's setpoint accepts as it is: its minimum (in A) + 4 A."""
    return math.ceil(limit_setpoint(profile).min / per_amp(profile)) + 4
