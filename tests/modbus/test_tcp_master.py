"""The Modbus TCP master against a pymodbus server: reads, writes, gateways, pipelining."""

from __future__ import annotations

import socket

import pytest
import trio

from hubgate._core import EncodeError, Field, ReadPlan, Request, RequestReceived, Response
from hubgate.fencing import SEND_GUARD, FencedError
from hubgate.modbus.errors import ModbusExceptionError
from hubgate.modbus.master import ModbusDevice
from hubgate.modbus.tcp_master import open_tcp_master
from tests.support.modbus_faults import (
    REGISTERS,
    answer,
    answers_pairs_reversed,
    serve_faulty_device,
)
from tests.support.modbus_peers import HOLDING, RunningServer


async def test_reads_holding_and_input_registers(pymodbus_tcp: RunningServer) -> None:
    with trio.fail_after(5):
        async with open_tcp_master("127.0.0.1", pymodbus_tcp.port) as master:
            device = ModbusDevice(master, 1)
            assert await device.read_registers(0, 10) == HOLDING[:10]
            assert await device.read_registers(90, 10, function=4) == HOLDING[90:100]
            assert device.stats.ok == 2
            assert device.stats.percentile_s(0.5) is not None


async def test_writes_reach_the_device(pymodbus_tcp: RunningServer) -> None:
    with trio.fail_after(5):
        async with open_tcp_master("127.0.0.1", pymodbus_tcp.port) as master:
            device = ModbusDevice(master, 2)
            await device.write_registers(50, [7])
            await device.write_registers(51, [8, 9, 10])
            assert pymodbus_tcp.get_registers(2, 50, 4) == [7, 8, 9, 10]
            response = await device.request(Request.ReadWriteMultipleRegisters(50, 2, 52, [11]))
            assert response == Response.ReadWriteMultipleRegisters([7, 8])
    pymodbus_tcp.set_registers(2, 50, [v * 10 for v in HOLDING[50:54]])


async def test_units_behind_one_address_share_one_connection(pymodbus_tcp: RunningServer) -> None:
    with trio.fail_after(5):
        async with open_tcp_master("127.0.0.1", pymodbus_tcp.port) as master:
            one, two = ModbusDevice(master, 1), ModbusDevice(master, 2)
            async with trio.open_nursery() as nursery:
                for _ in range(5):
                    nursery.start_soon(one.read_registers, 0, 4)
                    nursery.start_soon(two.read_registers, 0, 4)
            assert await two.read_registers(3, 1) == [HOLDING[3] * 10]
            assert master.connections_opened == 1
            assert (one.stats.ok, two.stats.ok) == (5, 6)


def blocks_plan(first: int, blocks: int, size: int = 3) -> ReadPlan:
    """`blocks` read requests of `size` registers from `first`, one register apart (the
    planner reads no gap, so each block is its own request)."""
    return ReadPlan(
        [
            Field(a)
            for b in range(blocks)
            for a in range(first + b * (size + 1), first + b * (size + 1) + size)
        ]
    )


def registers_of(plan: ReadPlan, registers: list[int]) -> list[int]:
    return [registers[r.address + i] for r in plan.requests for i in range(r.count)]


async def test_a_pipelining_device_gets_a_plans_requests_at_once_in_any_order() -> None:
    # The device answers each pair of requests in reverse: one request at a time it would
    # never answer the first, so the plan completes only when several are in flight.
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_faulty_device, answers_pairs_reversed())
            async with open_tcp_master("127.0.0.1", port) as master:
                device = ModbusDevice(master, 1, max_in_flight=4)
                plan = blocks_plan(0, 20)
                assert len(plan.requests) == 20
                assert await device.read_plan(plan) == registers_of(plan, REGISTERS)
                assert await device.read_plan(plan) == registers_of(plan, REGISTERS)
                assert (device.stats.ok, device.stats.requests) == (40, 40)
                assert master.stray_frames == 0
            nursery.cancel_scope.cancel()


async def test_a_device_that_does_not_pipeline_is_read_one_request_at_a_time(
    pymodbus_tcp: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    # pymodbus 3.16 answers only the first of several requests that arrive in one TCP
    # segment: a profile that claims pipelining for such a device costs one timeout.
    with trio.fail_after(5):
        async with open_tcp_master("127.0.0.1", pymodbus_tcp.port, timeout_s=0.3) as master:
            device = ModbusDevice(master, 1, max_in_flight=3)
            plan = blocks_plan(10, 3)
            assert await device.read_plan(plan) == registers_of(plan, HOLDING)
            assert "answered only 1 of its pipelined requests" in caplog.text
            assert (device.stats.timeouts, device.stats.ok) == (1, 3)
            assert await device.read_plan(plan) == registers_of(plan, HOLDING)
            assert (device.stats.timeouts, device.stats.ok) == (1, 6)


async def test_a_commands_plan_stops_at_the_request_its_epoch_no_longer_covers() -> None:
    """In a command's task (`hubgate.fencing.SEND_GUARD`) each request of a plan is checked
    right before it goes: once the epoch is gone, the rest never reach the device."""
    seen: list[int] = []

    async def counting(n: int, event: RequestReceived, stream: trio.abc.Stream) -> None:
        seen.append(n)
        await answer(n, event, stream)

    checks: list[int] = []

    def two_sends() -> bool:
        checks.append(1)
        return len(checks) <= 2

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_faulty_device, counting)
            async with open_tcp_master("127.0.0.1", port) as master:
                device = ModbusDevice(master, 1)
                plan = blocks_plan(0, 3)
                token = SEND_GUARD.set(two_sends)
                try:
                    with pytest.raises(FencedError):
                        await device.read_plan(plan)
                finally:
                    SEND_GUARD.reset(token)
                assert (seen, len(checks)) == ([1, 2], 3)
                assert await device.read_plan(plan) == registers_of(plan, REGISTERS)
                assert master.stray_frames == 0
            nursery.cancel_scope.cancel()


async def test_a_plan_answered_with_an_exception_is_not_retried(
    pymodbus_tcp: RunningServer,
) -> None:
    with trio.fail_after(5):
        async with open_tcp_master("127.0.0.1", pymodbus_tcp.port, retries=3) as master:
            device = ModbusDevice(master, 1)
            plan = ReadPlan([Field(0), Field(5000, "u32")])
            with pytest.raises(
                ModbusExceptionError, match=r"/1 answered function 3 with exc"
            ) as info:
                await device.read_plan(plan)
            assert (info.value.function, info.value.code) == (3, 2)
            assert (device.stats.requests, device.stats.exceptions) == (1, 1)
            assert await device.read_plan(ReadPlan([Field(0), Field(9, "u32")])) == [
                HOLDING[0],
                HOLDING[9] << 16 | HOLDING[10],
            ]


async def test_exception_response_names_the_exception_and_is_not_retried(
    pymodbus_tcp: RunningServer,
) -> None:
    with trio.fail_after(5):
        async with open_tcp_master("127.0.0.1", pymodbus_tcp.port, retries=3) as master:
            device = ModbusDevice(master, 1)
            with pytest.raises(
                ModbusExceptionError, match=r"exception 2 \(Illegal Data Address\)"
            ) as info:
                await device.read_registers(5000, 2)
            assert (info.value.function, info.value.code) == (3, 2)
            assert (device.stats.requests, device.stats.exceptions) == (1, 1)


async def test_a_request_outside_the_specification_is_refused_before_sending(
    pymodbus_tcp: RunningServer,
) -> None:
    with trio.fail_after(5):
        async with open_tcp_master("127.0.0.1", pymodbus_tcp.port) as master:
            with pytest.raises(EncodeError):
                await ModbusDevice(master, 1).read_registers(0, 126)
            assert master.connections_opened == 0  # refused before even connecting
            assert await ModbusDevice(master, 1).read_registers(0, 1) == HOLDING[:1]


async def test_connection_has_tcp_nodelay(pymodbus_tcp: RunningServer) -> None:
    with trio.fail_after(5):
        async with open_tcp_master("127.0.0.1", pymodbus_tcp.port) as master:
            await ModbusDevice(master, 1).read_registers(0, 1)
            connection = master._connection
            assert connection is not None
            assert connection.stream.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
