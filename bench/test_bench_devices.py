"""The profile driver: one full read + decode of an Alfen Eve, hubgate against pymodbus.

Group `device-decode-alfen`, same impls, no I/O: the registers of the four planned
reads (values set on the simulated device's memory) into values by quantity with
the state mapped: `ReadPlan.decode` + `ProfileDevice.reading` against
`convert_from_registers` per field, scale, sentinel and the state map.

Group `device-read-alfen`, `impl` in (hubgate, pymodbus), both reading the Alfen
profile's simulated device (pymodbus server, its own process) over one open
connection, `READS` full reads per round:
- hubgate: `ProfileCharger.read()`: the Rust plan's requests over the Trio
  `TcpMaster`, one `ReadPlan.decode` call, state mapping, a `Reading`;
- pymodbus: `AsyncModbusTcpClient.read_holding_registers` for the same
  requests, then `convert_from_registers` per field with scale and sentinel.
Each client runs its own event loop in a thread; a round is handed over from the
benchmark thread, each timed round right after one untimed round of the other impl
(so a change of the machine's load hits both). The wall time is mostly the server's;
`extra_info` adds `client_cpu_us_per_read`, this process's CPU time per read (the
server runs in another process), which the machine's other load does not inflate,
and `interleaved_cpu_us_per_read`, the other impl's from the rounds in between.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, Literal

import pytest
import trio
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.client.mixin import ModbusClientMixin

from hubgate.devices.model import Reading
from hubgate.devices.profile_driver import ProfileCharger
from hubgate.modbus.codec import Request
from hubgate.modbus.master import ModbusDevice
from hubgate.modbus.tcp_master import TcpMaster
from hubgate.profiles import load_named
from hubgate.profiles.codec_fields import read_plan
from hubgate.profiles.model import DataType, Function, IecState, Quantity, WordOrder
from hubgate.profiles.plan import RegisterSpec, field_specs
from hubgate.sim.simulated_device import SimulatedDevice

SIM_SCRIPT = Path(__file__).resolve().parent / "profile_sim_process.py"
PROFILE = load_named("alfen-eve")
READS = 20
_TYPES = ModbusClientMixin.DATATYPE
PYMODBUS_TYPES = {
    DataType.U16: _TYPES.UINT16,
    DataType.I16: _TYPES.INT16,
    DataType.U32: _TYPES.UINT32,
    DataType.I32: _TYPES.INT32,
    DataType.F32: _TYPES.FLOAT32,
    DataType.F64: _TYPES.FLOAT64,
    DataType.STRING: _TYPES.STRING,
}


@pytest.fixture(scope="module")
def alfen_port() -> Iterator[int]:
    with subprocess.Popen(
        [sys.executable, str(SIM_SCRIPT), PROFILE.name],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdin is not None
        assert process.stdout is not None
        try:
            yield int(process.stdout.readline())
        finally:
            process.stdin.close()
            process.wait(10)


@contextmanager
def trio_loop(main: Callable[[trio.Event], Awaitable[None]]) -> Iterator[trio.lowlevel.TrioToken]:
    """A Trio loop in a thread running `main(stop)`; yields its token for `from_thread`."""
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def root() -> None:
        state["token"] = trio.lowlevel.current_trio_token()
        stop = state["stop"] = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(main, stop)
            ready.set()

    thread = threading.Thread(target=trio.run, args=(root,), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield state["token"]
    finally:
        trio.from_thread.run_sync(state["stop"].set, trio_token=state["token"])
        thread.join(10)


def pymodbus_values(
    specs: dict[str, RegisterSpec], blocks: Sequence[tuple[int, Sequence[int]]]
) -> dict[str, Any]:
    """Every field decoded from the read blocks, the way a pymodbus user does it."""
    values: dict[str, Any] = {}
    for name, spec in specs.items():
        for first, registers in blocks:
            offset = spec.address - first
            if offset >= 0 and offset + spec.count <= len(registers):
                values[name] = pymodbus_decode(spec, registers[offset : offset + spec.count])
                break
    return values


def pymodbus_decode(spec: RegisterSpec, registers: Sequence[int]) -> float | str | None:
    """One field the way a pymodbus user decodes it."""
    if spec.sentinel:
        raw = 0
        for register in registers:
            raw = (raw << 16) | register
        if raw in spec.sentinel:
            return None
    order: Literal["big", "little"] = "little" if spec.order is WordOrder.CDAB else "big"
    value = ModbusClientMixin.convert_from_registers(
        list(registers), PYMODBUS_TYPES[spec.type], word_order=order
    )
    if isinstance(value, str):
        return value.strip("\x00 ")
    assert isinstance(value, int | float)
    return value * spec.scale + spec.offset


class CpuTimed:
    """Calls `run(fn)` and adds up this process's CPU time (both client loops live here)."""

    def __init__(self, run: Callable[[Callable[[], Awaitable[None]]], object]) -> None:
        self._run = run
        self.rounds = 0
        self.cpu_s = 0.0

    def __call__(self, fn: Callable[[], Awaitable[None]]) -> None:
        started = time.process_time()
        self._run(fn)
        self.cpu_s += time.process_time() - started
        self.rounds += 1


ROUNDS = 15
"""Timed rounds per impl, each after one untimed round of the other impl."""


@pytest.mark.parametrize("impl", ["hubgate", "pymodbus"])
@pytest.mark.benchmark(group="device-read-alfen")
def test_full_read_and_decode(benchmark: Any, impl: str, alfen_port: int) -> None:
    readings: list[dict[str, Any]] = []
    drivers: list[ProfileCharger] = []

    async def serve_driver(stop: trio.Event) -> None:
        master = TcpMaster("127.0.0.1", alfen_port, timeout_s=5)
        drivers.append(ProfileCharger("cp", PROFILE, ModbusDevice(master, PROFILE.transport.unit)))
        await stop.wait()
        await master.aclose()

    async def hubgate_round() -> None:
        for _ in range(READS):
            reading: Reading = await drivers[0].read()
            readings.append(
                {str(q): v for q, v in (*reading.values.items(), *reading.text.items())}
            )

    specs = field_specs(PROFILE)
    requests = read_plan(PROFILE, specs).requests
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    clients: list[AsyncModbusTcpClient] = []
    unit = PROFILE.transport.unit

    async def pymodbus_round() -> None:
        for _ in range(READS):
            blocks: list[tuple[int, Sequence[int]]] = []
            for request in requests:
                assert isinstance(request, Request.ReadHoldingRegisters)
                response = await clients[0].read_holding_registers(
                    request.address, count=request.count, device_id=unit
                )
                blocks.append((request.address, response.registers))
            readings.append(pymodbus_values(specs, blocks))

    def run_asyncio(fn: Callable[[], Awaitable[None]]) -> None:
        future: Future[None] = asyncio.run_coroutine_threadsafe(fn(), loop)  # type: ignore[arg-type]
        future.result(30)

    async def connect() -> None:  # the client binds to the running loop
        clients.append(AsyncModbusTcpClient("127.0.0.1", port=alfen_port, timeout=5))
        assert await clients[0].connect()

    run_asyncio(connect)
    with trio_loop(serve_driver) as token:
        trio.from_thread.run(hubgate_round, trio_token=token)  # connect, compile the plan
        hubgate = CpuTimed(partial(trio.from_thread.run, trio_token=token))
        pymodbus = CpuTimed(run_asyncio)
        timed, own, peer, peer_round = (
            (hubgate, hubgate_round, pymodbus, pymodbus_round)
            if impl == "hubgate"
            else (pymodbus, pymodbus_round, hubgate, hubgate_round)
        )

        def peer_first() -> None:  # the other impl's round, untimed: load drift hits both
            peer(peer_round)

        benchmark.pedantic(timed, args=(own,), setup=peer_first, rounds=ROUNDS, warmup_rounds=1)
    clients[0].close()
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()
    benchmark.extra_info["client_cpu_us_per_read"] = 1e6 * timed.cpu_s / (timed.rounds * READS)
    benchmark.extra_info["interleaved_cpu_us_per_read"] = (
        1e6 * peer.cpu_s / (max(peer.rounds, 1) * READS)
    )
    benchmark.extra_info["requests_per_read"] = len(requests)
    assert set(readings[-1]) == set(specs)
    assert set(readings[-1 - READS]) == set(specs)  # the other impl's
    assert len(readings) % READS == 0


def alfen_blocks() -> list[tuple[int, list[int]]]:
    """The registers of the Alfen plan's reads, from a simulated device holding live values."""
    sim = SimulatedDevice(PROFILE)
    for index, quantity in enumerate(field_specs(PROFILE)):
        sim.set(quantity, "C2" if quantity == "charger_state" else 200.5 + index)
    memory = sim.memory[(PROFILE.transport.unit, Function.HOLDING)]
    blocks = []
    for request in read_plan(PROFILE, field_specs(PROFILE)).requests:
        assert isinstance(request, Request.ReadHoldingRegisters)
        addresses = range(request.address, request.address + request.count)
        blocks.append((request.address, [memory.get(a, 0) for a in addresses]))
    return blocks


@pytest.mark.parametrize("impl", ["hubgate", "pymodbus"])
@pytest.mark.benchmark(group="device-decode-alfen")
def test_decode_only(benchmark: Any, impl: str) -> None:
    blocks = alfen_blocks()
    specs = field_specs(PROFILE)
    states = PROFILE.states
    assert states is not None
    if impl == "hubgate":
        driver = ProfileCharger("cp", PROFILE, ModbusDevice(TcpMaster("127.0.0.1"), 1))
        quantities = [Quantity(name) for name in specs]
        plan = read_plan(PROFILE, specs)
        registers = [block for _, block in blocks]
        reading = benchmark(lambda: driver.reading(quantities, plan.decode(registers), 0.0))
        assert reading.state is IecState.C
        assert reading.get(Quantity.VOLTAGE_L1) == pytest.approx(200.5)
    else:

        def decode() -> tuple[dict[str, Any], str | None]:
            values = pymodbus_values(specs, blocks)
            state = states.map.get(values["charger_state"])
            return values, None if state is None else state.value

        values, state = benchmark(decode)
        assert state == "C"
        assert values["voltage_l1"] == pytest.approx(200.5)
