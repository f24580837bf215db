"""The Modbus master's cost per device read, against in-process loopback devices.

The devices are light Trio servers on hubgate's own server codec (FC3 from 100
registers), in a thread of their own; the master reads every device once per
round, as the control loop does: the ten registers as the fields of a read plan,
every device's plan together under one deadline (`read_plans`), in another thread. The figure is that master thread's
CPU time per read (`time.thread_time`, median round), so neither the devices'
work nor the machine's other load counts; wall time per round is kept alongside. The peer,
pymodbus's asyncio client, reads the same devices the same way.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import trio

from hubgate._core import Field, ReadPlan, Request, RequestReceived, Response, TcpServerCodec
from hubgate.benchmarking.timing import Comparison
from hubgate.modbus.master import ModbusDevice
from hubgate.modbus.plan_group import read_plans
from hubgate.modbus.tcp_master import TcpMaster

REGISTERS = list(range(1000, 1100))
EXPECTED = REGISTERS[:10]


async def answer_reads(stream: trio.SocketStream) -> None:
    """A loopback device's connection: FC3 reads answered from `REGISTERS`."""
    codec = TcpServerCodec()
    async with stream:
        while data := await stream.receive_some(4096):
            codec.receive_data(data)
            while (event := codec.next_event()) is not None:
                assert isinstance(event, RequestReceived)
                request = event.request
                assert isinstance(request, Request.ReadHoldingRegisters)
                registers = REGISTERS[request.address : request.address + request.count]
                if len(registers) == request.count:
                    response = Response.ReadHoldingRegisters(registers)
                    frame = TcpServerCodec.encode_response(
                        event.transaction_id, event.unit, response
                    )
                else:  # outside the registers (a stray client): illegal data address
                    frame = TcpServerCodec.encode_exception(event.transaction_id, event.unit, 3, 2)
                await stream.send_all(frame)


class LoopbackDevices:
    """`count` Modbus TCP devices on 127.0.0.1, served by a Trio loop in a thread."""

    def __init__(self, count: int) -> None:
        self.ports: list[int] = []
        self._ready = threading.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._thread = threading.Thread(target=trio.run, args=(self._main, count), daemon=True)

    async def _main(self, count: int) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        async with trio.open_nursery() as nursery:
            for _ in range(count):
                listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
                self.ports.append(listeners[0].socket.getsockname()[1])
                nursery.start_soon(trio.serve_listeners, answer_reads, listeners)
            self._ready.set()
            await self._stop.wait()
            nursery.cancel_scope.cancel()

    def __enter__(self) -> LoopbackDevices:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("loopback devices did not start")
        return self

    def __exit__(self, *_exc: object) -> None:
        assert self._stop is not None
        trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join(10)


@dataclass(frozen=True)
class ReadCost:
    """Per device read: the master's CPU seconds, and wall seconds per round of all devices."""

    cpu_s: float
    round_wall_s: float


def _in_thread(main: Callable[[], ReadCost]) -> ReadCost:
    """Run `main` in a thread of its own, so that `thread_time` counts only it."""
    box: list[ReadCost | BaseException] = []

    def target() -> None:
        try:
            box.append(main())
        except BaseException as exc:
            box.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(120)
    if not box:
        raise RuntimeError("the Modbus master did not finish in 120 s")
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]


def _cost(devices: int, cpu_s: list[float], wall_s: list[float]) -> ReadCost:
    """Medians over the rounds (a round that met a garbage collection or a busy core is one)."""
    return ReadCost(statistics.median(cpu_s) / devices, statistics.median(wall_s))


def hubgate_read_cost(ports: list[int], rounds: int) -> ReadCost:
    """hubgate's `TcpMaster` reading FC3 x 10 from every device, `rounds` times."""

    async def main() -> ReadCost:
        masters = [TcpMaster("127.0.0.1", port, timeout_s=5) for port in ports]
        plan = ReadPlan([Field(address) for address in range(10)])
        reads = [(ModbusDevice(master, 1), plan) for master in masters]
        try:
            await read_plans(reads, trio.current_time() + 30)  # connect
            wall: list[float] = []
            cpu: list[float] = []
            for _ in range(rounds):
                started, started_cpu = time.perf_counter(), time.thread_time()
                results = await read_plans(reads, trio.current_time() + 5)
                wall.append(time.perf_counter() - started)
                cpu.append(time.thread_time() - started_cpu)
                if any(result != EXPECTED for result in results):
                    raise RuntimeError(f"a loopback read failed: {results}")
            return _cost(len(ports), cpu, wall)
        finally:
            for master in masters:
                await master.aclose()

    return _in_thread(lambda: trio.run(main))


def pymodbus_read_cost(ports: list[int], rounds: int) -> ReadCost:
    """pymodbus's asyncio client doing the same (raises ImportError when it is not installed)."""
    from pymodbus.client import AsyncModbusTcpClient

    async def main() -> ReadCost:
        clients = [AsyncModbusTcpClient("127.0.0.1", port=port, timeout=5) for port in ports]
        try:
            for client in clients:
                if not await client.connect():
                    raise RuntimeError("pymodbus could not connect to a loopback device")
            wall: list[float] = []
            cpu: list[float] = []
            for _ in range(rounds):
                started, started_cpu = time.perf_counter(), time.thread_time()
                responses = await asyncio.gather(
                    *(c.read_holding_registers(0, count=10, device_id=1) for c in clients)
                )
                wall.append(time.perf_counter() - started)
                cpu.append(time.thread_time() - started_cpu)
                if any(r.registers != EXPECTED for r in responses):
                    raise RuntimeError("a pymodbus loopback read failed")
            return _cost(len(ports), cpu, wall)
        finally:
            for client in clients:
                client.close()

    return _in_thread(lambda: asyncio.run(main()))


def measure_modbus_io(devices: int, rounds: int) -> tuple[Comparison, ReadCost]:
    """Master CPU per device read (hubgate vs pymodbus if installed), and hubgate's wall time
    per round of all devices: medians over `rounds` rounds."""
    with LoopbackDevices(devices) as loopback:
        ours = hubgate_read_cost(loopback.ports, rounds)
        try:
            peer_s: float | None = pymodbus_read_cost(loopback.ports, rounds).cpu_s
        except ImportError:
            peer_s = None
    return Comparison(ours.cpu_s, "pymodbus", peer_s), ours
