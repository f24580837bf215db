"""The TCP master against misbehaving devices: it recovers, and healthy devices are unaffected.

The faulty devices are small Trio servers (tests/support/modbus_faults.py): on loopback
beside a healthy pymodbus device, or in memory on Trio's MockClock, where every timeout
and backoff is asserted to the instant.
"""

from __future__ import annotations

import errno
import itertools
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from hubgate._core import Field, ReadPlan, Request, Response
from hubgate.backoff import Backoff
from hubgate.control.cycle import Failed, gather_by_deadline
from hubgate.modbus.errors import ModbusConnectionError, ModbusTimeoutError
from hubgate.modbus.master import ModbusDevice
from hubgate.modbus.reconnect import DEFAULT_BACKOFF
from hubgate.modbus.socket_link import Link, SocketLink
from hubgate.modbus.tcp_master import TcpMaster, open_tcp_master
from tests.support.modbus_faults import (
    FIRST_ANSWER_FAULTS,
    REGISTERS,
    Behaviour,
    MemoryDevices,
    answer,
    answer_then_close,
    late,
    serve_faulty_device,
    silent,
)
from tests.support.modbus_peers import HOLDING, RunningServer
from tests.support.ports import refused_port

FAST_BACKOFF = Backoff(initial_s=0.05, maximum_s=0.2, jitter=0.2)
PORT = 502
PATHS = pytest.mark.parametrize("via", ["request", "plan"])
"""Each fault against both ways of asking: one request (`_exchange`), and a read plan
(`PlanExchange`, also what `read_registers` uses)."""


async def read(device: ModbusDevice, address: int, count: int, via: str) -> list[int]:
    """`count` registers from `address`, by one FC3 request or as the fields of a plan."""
    if via == "request":
        response = await device.request(Request.ReadHoldingRegisters(address, count))
        assert isinstance(response, Response.ReadHoldingRegisters)
        return response.registers
    plan = ReadPlan([Field(a) for a in range(address, address + count)])
    values = await device.read_plan(plan)
    assert all(isinstance(v, int) for v in values)
    return values  # type: ignore[return-value]


@asynccontextmanager
async def memory_master(
    behaviour: Behaviour | None = None,
    *,
    timeout_s: float = 1.0,
    retries: int = 1,
    backoff: Backoff = DEFAULT_BACKOFF,
    refusal: int = errno.ECONNREFUSED,
) -> AsyncIterator[tuple[MemoryDevices, TcpMaster]]:
    """A master of a device at PORT in memory (`MemoryDevices`, for the mock clock), the
    device serving with `behaviour` (None: not yet; a connection then fails with `refusal`:
    ECONNREFUSED, the device's host refuses; EHOSTUNREACH, nothing answers)."""
    async with trio.open_nursery() as nursery:
        devices = MemoryDevices(nursery)
        if behaviour is not None:
            devices.serve(PORT, behaviour)

        async def connect(host: str, port: int) -> Link:
            try:
                return await devices.connect(host, port)
            except ConnectionRefusedError:
                if refusal == errno.ECONNREFUSED:
                    raise
                raise OSError(refusal, f"{host}:{port}: {os.strerror(refusal)}") from None

        async with open_tcp_master(
            "device", PORT, timeout_s=timeout_s, retries=retries, backoff=backoff, connect=connect
        ) as master:
            yield devices, master
        nursery.cancel_scope.cancel()


@PATHS
@FIRST_ANSWER_FAULTS
async def test_one_retry_recovers_from_a_fault_while_a_healthy_device_reads(
    pymodbus_tcp: RunningServer, behaviour: Behaviour, fault: str, via: str
) -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_faulty_device, behaviour)
            async with (
                open_tcp_master(
                    "127.0.0.1", port, timeout_s=0.3, retries=1, backoff=FAST_BACKOFF
                ) as faulty_link,
                open_tcp_master("127.0.0.1", pymodbus_tcp.port) as healthy_link,
            ):
                faulty, healthy = ModbusDevice(faulty_link, 1), ModbusDevice(healthy_link, 1)
                healthy_reads: list[list[int]] = []

                async def keep_reading_healthy() -> None:
                    for _ in range(5):
                        healthy_reads.append(await healthy.read_registers(0, 4))

                async with trio.open_nursery() as readers:
                    readers.start_soon(keep_reading_healthy)
                    assert await read(faulty, 10, 3, via) == REGISTERS[10:13], fault
                assert healthy_reads == [HOLDING[:4]] * 5
                assert faulty.stats.ok == 1
                assert faulty.stats.requests == 2  # the failed attempt and the retry
                assert await read(faulty, 20, 2, via) == REGISTERS[20:22]
            nursery.cancel_scope.cancel()


@PATHS
async def test_late_answer_is_dropped_by_transaction_id(
    autojump_clock: trio.testing.MockClock, via: str
) -> None:
    async with memory_master(late(0.45), timeout_s=0.3, retries=0) as (_, master):
        device = ModbusDevice(master, 1)
        start = trio.current_time()
        with pytest.raises(ModbusTimeoutError, match=r"no answer from .*/1 within 0.3 s"):
            await read(device, 0, 2, via)
        assert trio.current_time() - start == pytest.approx(0.3)
        # The device answers the first request late, then this one: the stale
        # answer must not be taken for this request's.
        assert await read(device, 30, 2, via) == REGISTERS[30:32]
        assert trio.current_time() - start == pytest.approx(0.45)
        assert master.stray_frames == 1
        assert (device.stats.timeouts, device.stats.ok) == (1, 1)


async def test_a_dead_device_delays_nobody_beyond_its_own_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    finished: dict[str, float] = {}
    async with trio.open_nursery() as nursery:
        devices = MemoryDevices(nursery)
        devices.serve(PORT, silent)
        devices.serve(PORT + 1, answer)
        async with (
            open_tcp_master(
                "dead", PORT, timeout_s=1.0, retries=1, connect=devices.connect
            ) as dead_link,
            open_tcp_master("healthy", PORT + 1, connect=devices.connect) as healthy_link,
        ):
            start = trio.current_time()

            async def read(name: str, device: ModbusDevice) -> list[int]:
                try:
                    return await device.read_registers(0, 2)
                finally:
                    finished[name] = trio.current_time() - start

            results = await gather_by_deadline(
                {
                    "dead": lambda: read("dead", ModbusDevice(dead_link, 1)),
                    "healthy": lambda: read("healthy", ModbusDevice(healthy_link, 1)),
                },
                start + 5,
            )
        nursery.cancel_scope.cancel()
    assert results["healthy"] == REGISTERS[:2]
    dead = results["dead"]
    assert isinstance(dead, Failed)
    assert isinstance(dead.error, ModbusTimeoutError)
    assert finished == {"healthy": 0.0, "dead": pytest.approx(2.0)}  # two attempts of 1 s


@PATHS
async def test_an_outer_deadline_cancels_a_request_cleanly(
    autojump_clock: trio.testing.MockClock, via: str
) -> None:
    async with memory_master(silent, timeout_s=10) as (_, master):
        start = trio.current_time()
        with trio.move_on_after(0.1) as scope:
            await read(ModbusDevice(master, 1), 0, 1, via)
        assert scope.cancelled_caught
        assert trio.current_time() - start == pytest.approx(0.1)
        connection = master._connection
        assert connection is not None
        assert connection.codec.pending == 0


async def test_refused_connection_backs_off_then_recovers_when_the_device_returns(
    autojump_clock: trio.testing.MockClock,
) -> None:
    backoff = Backoff(initial_s=0.3, jitter=0)
    async with memory_master(timeout_s=0.5, retries=0, backoff=backoff) as (devices, master):
        device = ModbusDevice(master, 1)
        start = trio.current_time()
        with pytest.raises(ModbusConnectionError, match="cannot connect"):
            await device.read_registers(0, 1)
        assert trio.current_time() == start
        # The next attempt is 0.3 s away, inside this request's deadline: it waits and fails again.
        with pytest.raises(ModbusConnectionError, match="cannot connect"):
            await device.read_registers(0, 1)
        assert trio.current_time() - start == pytest.approx(0.3)
        # Now 0.6 s away, past a 0.1 s deadline: it fails at once, saying when it retries.
        with pytest.raises(ModbusConnectionError, match=r"next attempt in 0\.60 s"):
            await device.read_registers(0, 1, timeout_s=0.1)
        assert trio.current_time() - start == pytest.approx(0.3)
        assert device.stats.errors == 3
        devices.serve(PORT, answer)
        await trio.sleep(0.6)  # on the mock clock
        assert await device.read_registers(0, 2) == REGISTERS[:2]
        assert trio.current_time() - start == pytest.approx(0.9)
        assert master.connections_opened == 1


@pytest.mark.parametrize(
    ("code", "gaps"),
    [
        (errno.ECONNREFUSED, [0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0]),  # REFUSED_RETRY_S
        (errno.EHOSTUNREACH, [0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0]),  # the backoff's ceiling
    ],
    ids=["refused", "unreachable"],
)
async def test_a_refusing_device_is_dialled_every_second_an_unreachable_one_backs_off(
    autojump_clock: trio.testing.MockClock, code: int, gaps: list[float]
) -> None:
    """A charger that reboots refuses until its server listens: however long it refused, it
    is read within `REFUSED_RETRY_S` of listening, not at the end of a backoff grown to 10 s."""
    backoff = Backoff(initial_s=0.2, maximum_s=10.0, jitter=0)
    async with memory_master(timeout_s=0.5, retries=0, backoff=backoff, refusal=code) as (
        devices,
        master,
    ):
        device = ModbusDevice(master, 1)
        failed_at = []
        for _ in range(len(gaps) + 1):
            with pytest.raises(ModbusConnectionError, match="cannot connect"):
                await device.read_registers(0, 1, timeout_s=20)
            failed_at.append(trio.current_time())
        assert [b - a for a, b in itertools.pairwise(failed_at)] == pytest.approx(gaps)
        devices.serve(PORT, answer)
        back = trio.current_time()
        assert await device.read_registers(0, 2, timeout_s=20) == REGISTERS[:2]
        assert trio.current_time() - back == pytest.approx(gaps[-1])


async def test_a_refused_connection_on_loopback_is_a_refusal() -> None:
    """What tells the master a device refused: the socket's own error, passed on."""
    with (
        refused_port() as port,
        trio.fail_after(5),
        pytest.raises(ConnectionRefusedError, match="no address of"),
    ):
        await SocketLink.connect("127.0.0.1", port)


async def test_dial_again_forgets_the_backoff_of_a_device_out_of_reach(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A gateway that takes the lead dials at once a device it could not reach (the old
    leader's side of a partition), not at the end of a backoff grown to its ceiling."""
    backoff = Backoff(initial_s=0.2, maximum_s=10.0, jitter=0)
    async with memory_master(
        timeout_s=0.5, retries=0, backoff=backoff, refusal=errno.EHOSTUNREACH
    ) as (devices, master):
        device = ModbusDevice(master, 1)
        for _ in range(7):  # 0.2, 0.4, ... 10 s apart
            with pytest.raises(ModbusConnectionError, match="cannot connect"):
                await device.read_registers(0, 1, timeout_s=20)
        devices.serve(PORT, answer)
        with pytest.raises(ModbusConnectionError, match=r"next attempt in 10\.00 s"):
            await device.read_registers(0, 1, timeout_s=1)
        master.dial_again()
        start = trio.current_time()
        assert await device.read_registers(0, 2, timeout_s=1) == REGISTERS[:2]
        assert trio.current_time() == start


@PATHS
async def test_a_device_that_never_answers_times_out_every_attempt(
    autojump_clock: trio.testing.MockClock, via: str
) -> None:
    async with memory_master(silent, timeout_s=0.1, retries=2) as (_, master):
        device = ModbusDevice(master, 1)
        start = trio.current_time()
        with pytest.raises(ModbusTimeoutError):
            await read(device, 0, 1, via)
        assert trio.current_time() - start == pytest.approx(0.3)
        assert (device.stats.requests, device.stats.timeouts) == (3, 3)
        assert master.connections_opened == 1


@PATHS
async def test_a_device_closing_idle_connections_costs_one_quick_retry(
    autojump_clock: trio.testing.MockClock, via: str
) -> None:
    async with memory_master(answer_then_close) as (_, master):
        device = ModbusDevice(master, 1)
        start = trio.current_time()
        for address in range(5):
            assert await read(device, address, 1, via) == REGISTERS[address : address + 1]
        assert trio.current_time() == start  # the retries reconnect at once: no backoff
        assert master.connections_opened == 5
        assert (device.stats.ok, device.stats.errors) == (5, 4)
