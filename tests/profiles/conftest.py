"""Fixtures for profile tests: every profile, a steppable clock, a served device."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from pymodbus.client import ModbusTcpClient

from hubgate.profiles import Profile, load_all
from hubgate.profiles.simulated import SimulatedDevice, serve

PROFILES: dict[str, Profile] = load_all()


@dataclass
class FakeClock:
    """Time that moves only when a test says so."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Served:
    """A simulated device, its clock and a connected pymodbus client."""

    device: SimulatedDevice
    clock: FakeClock
    client: ModbusTcpClient

    @property
    def profile(self) -> Profile:
        return self.device.profile


@pytest.fixture
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    """The profile named by the test's `name` parameter, served on 127.0.0.1:0."""
    clock = FakeClock()
    device = SimulatedDevice(PROFILES[request.param], clock=clock)
    with serve(device) as port:
        client = ModbusTcpClient("127.0.0.1", port=port, timeout=3, retries=0)
        assert client.connect()
        try:
            yield Served(device, clock, client)
        finally:
            client.close()
