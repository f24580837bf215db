"""The codec against real peers over loopback: a pymodbus TCP server (for the
client codec), and a pymodbus client and `mbpoll` (for the server codec).

The I/O loops here are the least a test needs; the real transports live in
`hubgate.modbus` (issue 4).
"""

from __future__ import annotations

import asyncio
import functools
import struct
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import trio
from pymodbus.client import ModbusTcpClient
from pymodbus.framer import FramerType
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from hubgate.modbus.codec import (
    Field,
    ReadPlan,
    Request,
    RequestReceived,
    RequestRejected,
    Response,
    ResponseReceived,
    RtuClientCodec,
    TcpClientCodec,
    TcpServerCodec,
)

# A fake SunSpec device: "SunS" at 40000, then a float (ABCD) and an i16.
IMAGE = [0x5375, 0x6E53, *struct.unpack(">HH", struct.pack(">f", 230.5)), 0xFF9C]


@pytest.fixture(params=[FramerType.SOCKET, FramerType.RTU], ids=["tcp", "rtu-over-tcp"])
def pymodbus_server(request: pytest.FixtureRequest) -> Iterator[tuple[int, FramerType]]:
    """A pymodbus server on TCP in a thread (its own asyncio loop), speaking
    Modbus TCP or RTU over TCP; yields its port and framing."""
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def main() -> None:
        device = SimDevice(
            id=1, simdata=[SimData(40000, values=IMAGE + [0] * 20, datatype=DataType.REGISTERS)]
        )
        server = ModbusTcpServer(device, address=("127.0.0.1", 0), framer=request.param)
        await server.serve_forever(background=True)
        state["loop"], state["server"] = asyncio.get_running_loop(), server
        state["port"] = server.transport.sockets[0].getsockname()[1]
        ready.set()
        await server.serving

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(5)
    yield state["port"], request.param
    asyncio.run_coroutine_threadsafe(state["server"].shutdown(), state["loop"]).result(5)
    thread.join(5)


async def exchange(
    stream: trio.SocketStream, client: TcpClientCodec | RtuClientCodec, frame: bytes
) -> Any:
    await stream.send_all(frame)
    while (event := client.next_event()) is None:
        client.receive_data(await stream.receive_some())
    return event


async def test_client_codec_reads_a_pymodbus_server(
    pymodbus_server: tuple[int, FramerType],
) -> None:
    port, framing = pymodbus_server
    plan = ReadPlan(
        [Field(40000, "string", count=2), Field(40002, "f32"), Field(40004, "i16", scale=0.1)]
    )
    client = TcpClientCodec() if framing == FramerType.SOCKET else RtuClientCodec()
    with trio.fail_after(5):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            (request,) = plan.requests
            _, frame = client.encode_request(1, request)
            event = await exchange(stream, client, frame)
            assert isinstance(event, ResponseReceived)
            assert plan.decode([event.response]) == pytest.approx(["SunS", 230.5, -10.0])

            _, frame = client.encode_request(1, Request.WriteMultipleRegisters(40010, [7, 8]))
            event = await exchange(stream, client, frame)
            assert event.response == Response.WriteMultipleRegisters(40010, 2)

            _, frame = client.encode_request(1, Request.ReadHoldingRegisters(40010, 2))
            event = await exchange(stream, client, frame)
            assert event.response == Response.ReadHoldingRegisters([7, 8])

            _, frame = client.encode_request(1, Request.ReadHoldingRegisters(100, 2))
            event = await exchange(stream, client, frame)
            assert event.response == Response.Exception(3, 2)


async def serve(stream: trio.SocketStream, registers: dict[int, int]) -> None:
    """Answers FC3 and FC16 from `registers`; anything else gets exception 01."""
    codec = TcpServerCodec()
    async with stream:
        async for data in stream:
            codec.receive_data(data)
            while (event := codec.next_event()) is not None:
                if isinstance(event, RequestRejected):
                    reply = codec.encode_exception(
                        event.transaction_id, event.unit, event.function_code, event.exception_code
                    )
                    await stream.send_all(reply)
                    continue
                assert isinstance(event, RequestReceived)
                response: Response
                match event.request:
                    case Request.ReadHoldingRegisters(address=address, count=count):
                        values = [registers.get(address + i, 0) for i in range(count)]
                        response = Response.ReadHoldingRegisters(values)
                    case Request.WriteMultipleRegisters(address=address, values=values):
                        registers.update(enumerate(values, start=address))
                        response = Response.WriteMultipleRegisters(address, len(values))
                    case _:
                        response = Response.Exception(event.request.function_code, 1)
                reply = codec.encode_response(event.transaction_id, event.unit, response)
                await stream.send_all(reply)


@pytest.mark.peers("mbpoll")
async def test_server_codec_answers_pymodbus_and_mbpoll() -> None:
    registers = {i: 100 + i for i in range(10)}
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            handler = functools.partial(serve, registers=registers)
            listeners = await nursery.start(
                functools.partial(trio.serve_tcp, handler, 0, host="127.0.0.1")
            )
            port = listeners[0].socket.getsockname()[1]

            def pymodbus_client() -> tuple[list[int], list[int], int]:
                with ModbusTcpClient("127.0.0.1", port=port, timeout=3) as client:
                    read = client.read_holding_registers(0, count=10, device_id=1)
                    client.write_registers(3, [7, 8], device_id=1)
                    again = client.read_holding_registers(3, count=2, device_id=1)
                    refused = client.read_coils(0, count=1, device_id=1)
                    return list(read.registers), list(again.registers), refused.exception_code

            read, again, refused = await trio.to_thread.run_sync(pymodbus_client)
            assert read == [100 + i for i in range(10)]
            assert again == [7, 8]
            assert refused == 1

            result = await trio.run_process(
                [
                    "mbpoll",
                    "-m",
                    "tcp",
                    "-p",
                    str(port),
                    "-a",
                    "1",
                    "-r",
                    "3",
                    "-c",
                    "3",
                    "-1",
                    "-0",
                    "127.0.0.1",
                ],
                capture_stdout=True,
            )
            polled = dict(
                line.replace(" ", "").split(":\t")
                for line in result.stdout.decode().splitlines()
                if line.startswith("[")
            )
            assert polled == {"[3]": "7", "[4]": "8", "[5]": "105"}
            nursery.cancel_scope.cancel()
