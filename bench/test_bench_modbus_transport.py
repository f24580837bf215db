"""Modbus transports: hubgate's Trio masters against pymodbus's asyncio client, same run.

Groups, `impl` in (hubgate, pymodbus):
- `modbus-tcp-fc3-sequential`: 100 sequential FC3 reads of 10 registers over one
  open connection to a pymodbus server (its own process); requests per second in
  `extra_info["requests_per_s"]`.
- `modbus-read-250-devices`: one FC3 read of 10 registers from each of 250 devices,
  each its own server on loopback with its own connection (250 light Trio devices
  built on hubgate's server codec, in one process of their own); hubgate reads them
  as the control loop does, a read plan of 10 fields each through `read_plans` (one
  task for all); `per-device-tasks` is the way it did before (a task per device
  under `gather_by_deadline`, each device's `read_plan`); target <= 100 ms.

Each client runs its own event loop in a thread, with connections opened before
the rounds; a round is handed over from the benchmark thread. The impls take turns:
each timed round comes right after one untimed round of the other impl (hubgate's
impls after pymodbus's, pymodbus after hubgate's), so a change of the machine's load
hits both. Besides wall time, `extra_info` has `requests_per_s` (median),
`client_cpu_us_per_request`: the client process's CPU time per request, which the
other load on a shared machine does not inflate, and
`interleaved_cpu_us_per_request`: the other impl's, from the rounds in between;
`client_gc_us_per_request` and `interleaved_gc_us_per_request` are the parts of those the
cyclic garbage collector took (the test process's heap from before the test is frozen out
of the collections, as a gateway's start-up heap is: a collection of the oldest generation
scanned all of it, about 66 ms, in whichever impl's round came first after it).
"""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
from pymodbus.client import AsyncModbusTcpClient

from hubgate._core import Field, ReadPlan
from hubgate.control.cycle import gather_by_deadline
from hubgate.modbus.master import ModbusDevice
from hubgate.modbus.plan_group import read_plans
from hubgate.modbus.tcp_master import TcpMaster

DEVICES_SCRIPT = Path(__file__).resolve().parent / "modbus_bench_devices.py"
IMPLS = ["hubgate", "pymodbus"]
PLAN = ReadPlan([Field(address) for address in range(10)])
"""The 10 registers as the fields of a read plan, as a profile's device is read."""
SEQUENTIAL = 100
DEVICE_COUNT = 250
EXPECTED = list(range(1000, 1010))


@pytest.fixture(scope="module")
def pymodbus_port() -> Iterator[int]:
    with peer_process("pymodbus") as ports:
        yield ports[0]


@pytest.fixture(scope="module")
def device_ports() -> Iterator[list[int]]:
    with peer_process("trio", str(DEVICE_COUNT)) as ports:
        yield ports


@contextmanager
def peer_process(*args: str) -> Iterator[list[int]]:
    """The peers of bench/modbus_bench_devices.py in a process of their own; yields the ports."""
    with subprocess.Popen(
        [sys.executable, str(DEVICES_SCRIPT), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdin is not None
        assert process.stdout is not None
        try:
            yield [int(port) for port in process.stdout.readline().split()]
        finally:
            process.stdin.close()
            process.wait(10)


class TrioClient:
    """A Trio loop in a thread that runs rounds handed over by the benchmark thread."""

    def __init__(self, ports: list[int]) -> None:
        self.devices: list[ModbusDevice] = []
        self._ports = ports
        self._ready = threading.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._thread = threading.Thread(target=trio.run, args=(self._main,), daemon=True)
        self._thread.start()
        assert self._ready.wait(10)

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        masters = [TcpMaster("127.0.0.1", port, timeout_s=5) for port in self._ports]
        self.devices = [ModbusDevice(master, 1) for master in masters]
        for device in self.devices:  # connect before the rounds
            await device.read_registers(0, 1)
        self._ready.set()
        await self._stop.wait()
        for master in masters:
            await master.aclose()

    def run(self, fn: Callable[[], Awaitable[object]]) -> object:
        return trio.from_thread.run(fn, trio_token=self._token)

    def close(self) -> None:
        assert self._stop is not None
        trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join(10)


class AsyncioClient:
    """pymodbus's asyncio client, in its own loop in a thread."""

    def __init__(self, ports: list[int]) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.clients: list[AsyncModbusTcpClient] = self.run(self._connect, ports)  # type: ignore[assignment]

    async def _connect(self, ports: list[int]) -> list[AsyncModbusTcpClient]:
        clients = [AsyncModbusTcpClient("127.0.0.1", port=port, timeout=5) for port in ports]
        for client in clients:
            assert await client.connect()
        return clients

    def run(self, fn: Callable[..., Awaitable[object]], *args: Any) -> object:
        future: Future[object] = asyncio.run_coroutine_threadsafe(fn(*args), self.loop)  # type: ignore[arg-type]
        return future.result(30)

    def close(self) -> None:
        for client in self.clients:
            client.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


class GcClock:
    """The CPU time of this process's cyclic garbage collections (a collection of the
    oldest generation scans every object of the test process, pytest's too: about 66 ms
    here), counted to whichever round it falls in."""

    def __init__(self) -> None:
        self.total_s = 0.0
        self._began = 0.0

    def __call__(self, phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.process_time()
        else:
            self.total_s += time.process_time() - self._began


@pytest.fixture(autouse=True)
def gc_clock() -> Iterator[GcClock]:
    """Counts the collections' CPU time; the test process's heap so far (pytest's, the
    modules') is frozen out of them for the test, as a gateway freezes its start-up heap
    (`hubgate.runtime.gc_tuning.settle_gc`): a collection of the oldest generation then
    scans what the clients made, not every object of the test process (about 66 ms,
    which fell in whichever impl's round came first after it)."""
    clock = GcClock()
    gc.collect()
    gc.freeze()
    gc.callbacks.append(clock)
    try:
        yield clock
    finally:
        gc.callbacks.remove(clock)
        gc.unfreeze()


class CpuTimed:
    """Runs rounds through `run` and adds up this process's CPU time (both clients' loops
    run in it, the servers do not), which the machine's other load does not inflate, and
    the part of it the garbage collector took (`gc_s`)."""

    def __init__(
        self, run: Callable[[Callable[[], Awaitable[object]]], object], gc_clock: GcClock
    ) -> None:
        self._run = run
        self._gc_clock = gc_clock
        self.rounds = 0
        self.cpu_s = 0.0
        self.gc_s = 0.0

    def __call__(self, fn: Callable[[], Awaitable[object]]) -> object:
        collected = self._gc_clock.total_s
        started = time.process_time()
        result = self._run(fn)
        self.cpu_s += time.process_time() - started
        self.gc_s += self._gc_clock.total_s - collected
        self.rounds += 1
        return result


def report(benchmark: Any, timed: CpuTimed, requests: int) -> None:
    if benchmark.stats is not None:
        benchmark.extra_info["requests_per_s"] = requests / benchmark.stats.stats.median
    benchmark.extra_info["client_cpu_us_per_request"] = (
        1e6 * timed.cpu_s / (timed.rounds * requests)
    )
    benchmark.extra_info["client_gc_us_per_request"] = 1e6 * timed.gc_s / (timed.rounds * requests)


ROUNDS = 15
"""Timed rounds per impl, each after one untimed round of the other impl."""


def interleaved(
    benchmark: Any,
    timed: CpuTimed,
    round_: Callable[[], Awaitable[object]],
    peer: CpuTimed,
    peer_round: Callable[[], Awaitable[object]],
    requests: int,
) -> None:
    """Benchmark `round_`, each round right after one of the peer's (`setup`, untimed), so a
    change of the machine's load hits both; `extra_info` gets both impls' CPU per request."""

    def peer_first() -> None:
        peer(peer_round)

    benchmark.pedantic(timed, args=(round_,), setup=peer_first, rounds=ROUNDS, warmup_rounds=1)
    report(benchmark, timed, requests)
    benchmark.extra_info["interleaved_cpu_us_per_request"] = (
        1e6 * peer.cpu_s / (max(peer.rounds, 1) * requests)
    )
    benchmark.extra_info["interleaved_gc_us_per_request"] = (
        1e6 * peer.gc_s / (max(peer.rounds, 1) * requests)
    )


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.benchmark(group="modbus-tcp-fc3-sequential")
def test_sequential_requests(
    benchmark: Any, impl: str, pymodbus_port: int, gc_clock: GcClock
) -> None:
    results: list[list[int]] = []
    trio_client = TrioClient([pymodbus_port])
    asyncio_client = AsyncioClient([pymodbus_port])
    device = trio_client.devices[0]
    peer = asyncio_client.clients[0]

    async def hubgate_round() -> None:
        for _ in range(SEQUENTIAL):
            results.append(await device.read_registers(0, 10))

    async def pymodbus_round() -> None:
        for _ in range(SEQUENTIAL):
            results.append((await peer.read_holding_registers(0, count=10, device_id=1)).registers)

    hubgate = CpuTimed(trio_client.run, gc_clock)
    pymodbus = CpuTimed(asyncio_client.run, gc_clock)
    if impl == "hubgate":
        interleaved(benchmark, hubgate, hubgate_round, pymodbus, pymodbus_round, SEQUENTIAL)
    else:
        interleaved(benchmark, pymodbus, pymodbus_round, hubgate, hubgate_round, SEQUENTIAL)
    trio_client.close()
    asyncio_client.close()
    assert results[-1] == EXPECTED
    assert len(results) % SEQUENTIAL == 0


@pytest.mark.parametrize("impl", [*IMPLS, "per-device-tasks"])
@pytest.mark.benchmark(group="modbus-read-250-devices")
def test_read_250_devices_once(
    benchmark: Any, impl: str, device_ports: list[int], gc_clock: GcClock
) -> None:
    rounds: list[list[object]] = []
    trio_client = TrioClient(device_ports)
    asyncio_client = AsyncioClient(device_ports)
    peers = asyncio_client.clients

    async def hubgate_round() -> None:
        # As the control loop reads its devices' plans: together, under one deadline.
        reads = [(device, PLAN) for device in trio_client.devices]
        rounds.append(list(await read_plans(reads, trio.current_time() + 1.0)))

    async def tasks_round() -> None:
        devices = trio_client.devices
        results = await gather_by_deadline(
            {str(i): partial(d.read_plan, PLAN) for i, d in enumerate(devices)},
            trio.current_time() + 1.0,
        )
        rounds.append([results[str(i)] for i in range(len(devices))])

    async def pymodbus_round() -> None:
        responses = await asyncio.gather(
            *(peer.read_holding_registers(0, count=10, device_id=1) for peer in peers)
        )
        rounds.append([r.registers for r in responses])

    hubgate = CpuTimed(trio_client.run, gc_clock)
    pymodbus = CpuTimed(asyncio_client.run, gc_clock)
    if impl == "pymodbus":
        interleaved(benchmark, pymodbus, pymodbus_round, hubgate, hubgate_round, DEVICE_COUNT)
    else:
        own = hubgate_round if impl == "hubgate" else tasks_round
        interleaved(benchmark, hubgate, own, pymodbus, pymodbus_round, DEVICE_COUNT)
    trio_client.close()
    asyncio_client.close()
    assert rounds[-1] == [EXPECTED] * DEVICE_COUNT
    assert rounds[-2] == [EXPECTED] * DEVICE_COUNT  # the other impl's
