"""The `served` fixture: a profile's simulated device on 127.0.0.1:0 with a client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pymodbus.client import ModbusTcpClient

from hubgate.sim.modbus_box import serve
from hubgate.sim.simulated_device import SimulatedDevice
from tests.support.simulated_devices import PROFILES, FakeClock, Served


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
