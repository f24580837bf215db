"""Helpers for driver tests: every profile, a steppable clock, a driver on a served device."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from hubgate.devices.profile_driver import ProfileDevice, driver_for
from hubgate.modbus.master import ModbusDevice
from hubgate.modbus.tcp_master import open_tcp_master
from hubgate.profiles import Profile, load_all
from hubgate.profiles.simulated import SimulatedDevice, serve

PROFILES: dict[str, Profile] = load_all()


@dataclass
class FakeClock:
    """Time that moves only when a test says so."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


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
