"""The Modbus TCP master against a pymodbus server: reads, writes, gateways, pipelining."""

from __future__ import annotations

import socket

import pytest
import trio

from hubgate._core import EncodeError, Request, Response
from hubgate.modbus.errors import ModbusExceptionError
from hubgate.modbus.master import ModbusDevice
from hubgate.modbus.tcp_master import open_tcp_master
from tests.support.modbus_faults import REGISTERS, answers_pairs_reversed, serve_faulty_device
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


async def test_pipelined_requests_are_matched_by_transaction_id() -> None:
    # pymodbus 3.16 answers only the first of several frames in one segment, so the
    # pipelining peer is a Trio device that answers each pair of requests in reverse.
    results: dict[int, list[int]] = {}
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_faulty_device, answers_pairs_reversed())
            async with open_tcp_master("127.0.0.1", port, max_in_flight=8) as master:
                device = ModbusDevice(master, 1)

                async def read(address: int) -> None:
                    results[address] = await device.read_registers(address, 3)

                async with trio.open_nursery() as readers:
                    for address in range(0, 80, 4):
                        readers.start_soon(read, address)
            nursery.cancel_scope.cancel()
    assert results == {a: REGISTERS[a : a + 3] for a in range(0, 80, 4)}
    assert device.stats.ok == 20


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
            assert master.connections_opened == 1
            assert await ModbusDevice(master, 1).read_registers(0, 1) == HOLDING[:1]


async def test_connection_has_tcp_nodelay(pymodbus_tcp: RunningServer) -> None:
    with trio.fail_after(5):
        async with open_tcp_master("127.0.0.1", pymodbus_tcp.port) as master:
            await ModbusDevice(master, 1).read_registers(0, 1)
            connection = master._connection
            assert connection is not None
            assert connection.stream.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
