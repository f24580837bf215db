"""Firmware profiles: loading every file, and a simulated device's request cost.

`profiles-load-all` is what `hubgate config check` and `profiles check` pay.
`profile-sim-fc3-read` reads Alfen's socket measurements (FC3, 40 registers) from
its simulated device (impl `hubgate`: behaviour, watchdog and memory refresh
on every request) and from a bare pymodbus SimDevice holding the same
registers (impl `pymodbus`): the price of the behaviour layer.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from pymodbus.client import ModbusTcpClient
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from hubgate.profiles import load_all, load_named
from hubgate.profiles.model import Function
from hubgate.sim.modbus_box import serve
from hubgate.sim.simulated_device import SimulatedDevice

FIRST, COUNT = 306, 40
"""Alfen socket measurements: voltages to total power."""


@pytest.mark.benchmark(group="profiles-load-all")
@pytest.mark.parametrize("impl", ["hubgate"])
def test_load_all_profiles(benchmark: Any, impl: str) -> None:
    profiles = benchmark(load_all)
    assert len(profiles) >= 20


@contextmanager
def bare_pymodbus(values: list[int]) -> Iterator[int]:
    """A plain pymodbus server with the same registers, no action callback."""
    started = threading.Event()
    state: dict[str, Any] = {}

    async def main() -> None:
        device = SimDevice(
            id=1, simdata=[SimData(FIRST, values=values, datatype=DataType.REGISTERS)]
        )
        server = ModbusTcpServer(device, address=("127.0.0.1", 0))
        await server.serve_forever(background=True)
        state.update(loop=asyncio.get_running_loop(), server=server)
        state["port"] = server.transport.sockets[0].getsockname()[1]
        started.set()
        await server.serving

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield state["port"]
    finally:
        asyncio.run_coroutine_threadsafe(state["server"].shutdown(), state["loop"]).result(5)
        thread.join(5)


@contextmanager
def served(impl: str) -> Iterator[int]:
    device = SimulatedDevice(load_named("alfen-eve"))
    for quantity in ("voltage_l1", "current_l1", "power_total"):
        device.set(quantity, 230.5)
    if impl == "hubgate":
        with serve(device) as port:
            yield port
    else:
        memory = device.memory[(1, Function.HOLDING)]
        with bare_pymodbus([memory.get(a, 0) for a in range(FIRST, FIRST + COUNT)]) as port:
            yield port


@pytest.mark.benchmark(group="profile-sim-fc3-read")
@pytest.mark.parametrize("impl", ["hubgate", "pymodbus"])
def test_simulated_device_read(benchmark: Any, impl: str) -> None:
    with served(impl) as port:
        client = ModbusTcpClient("127.0.0.1", port=port, timeout=3, retries=0)
        assert client.connect()
        try:
            response = benchmark(client.read_holding_registers, FIRST, count=COUNT, device_id=1)
            assert len(response.registers) == COUNT
            assert response.registers[0] == 0x4366  # 230.5 as f32, high word
        finally:
            client.close()
