"""Helpers for profile tests: every profile, a steppable clock, a served device."""

from __future__ import annotations

from dataclasses import dataclass

from pymodbus.client import ModbusTcpClient

from hubgate.profiles import Profile, load_all
from hubgate.sim.simulated_device import SimulatedDevice

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
class Served:
    """A simulated device, its clock and a connected pymodbus client."""

    device: SimulatedDevice
    clock: FakeClock
    client: ModbusTcpClient

    @property
    def profile(self) -> Profile:
        return self.device.profile
