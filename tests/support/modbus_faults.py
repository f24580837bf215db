"""Misbehaving Modbus TCP devices on Trio: the fault injectors of the transport tests.

Each device decodes requests with hubgate's own server codec and hands every
request to a `Behaviour`, which decides what goes back on the wire: the right
answer, nothing, a late answer, a wrong transaction id, half a frame, garbage.
A device listens on loopback (`serve_faulty_device`), or in memory
(`MemoryDevices`, whose `connect` a `TcpMaster` takes), where a test on Trio's
`MockClock` can assert its timing exactly.
"""

from __future__ import annotations

import errno
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest
import trio
import trio.testing

from hubgate._core import Request, RequestReceived, RequestRejected, Response, TcpServerCodec

REGISTERS = list(range(100, 200))
"""What every faulty device holds at addresses 0-99 (when it answers)."""

Behaviour = Callable[[int, RequestReceived, trio.abc.Stream], Awaitable[None]]
"""Called with the request's number (1-based, per device), the request and the stream."""


class DeviceClosedError(Exception):
    """Raised by a behaviour that closed the connection."""


def answer_frame(event: RequestReceived, *, transaction_id: int | None = None) -> bytes:
    """The correct response to a register read, optionally with another transaction id."""
    request = event.request
    assert isinstance(request, Request.ReadHoldingRegisters)
    registers = REGISTERS[request.address : request.address + request.count]
    tid = event.transaction_id if transaction_id is None else transaction_id
    return TcpServerCodec.encode_response(tid, event.unit, Response.ReadHoldingRegisters(registers))


async def answer(_n: int, event: RequestReceived, stream: trio.abc.Stream) -> None:
    """A well-behaved device."""
    await stream.send_all(answer_frame(event))


async def silent(_n: int, _event: RequestReceived, _stream: trio.abc.Stream) -> None:
    """A device that never answers."""


def late(delay_s: float) -> Behaviour:
    """Answers the first request after `delay_s`, the others at once."""

    async def behaviour(n: int, event: RequestReceived, stream: trio.abc.Stream) -> None:
        if n == 1:
            await trio.sleep(delay_s)
        await stream.send_all(answer_frame(event))

    return behaviour


async def wrong_transaction_first(n: int, event: RequestReceived, stream: trio.abc.Stream) -> None:
    """Answers the first request with another transaction id, then correctly."""
    tid = (event.transaction_id + 0x5555) & 0xFFFF if n == 1 else None
    await stream.send_all(answer_frame(event, transaction_id=tid))


async def short_answer_first(n: int, event: RequestReceived, stream: trio.abc.Stream) -> None:
    """Answers the first request with one register too few (a response to another
    request, under its transaction id), then correctly."""
    frame = answer_frame(event)
    if n == 1:
        request = event.request
        assert isinstance(request, Request.ReadHoldingRegisters)
        registers = REGISTERS[request.address : request.address + request.count - 1]
        response = Response.ReadHoldingRegisters(registers)
        frame = TcpServerCodec.encode_response(event.transaction_id, event.unit, response)
    await stream.send_all(frame)


async def close_mid_frame_first(n: int, event: RequestReceived, stream: trio.abc.Stream) -> None:
    """Sends half of the first answer and closes the connection; then behaves."""
    if n == 1:
        await stream.send_all(answer_frame(event)[:5])
        raise DeviceClosedError
    await stream.send_all(answer_frame(event))


async def reset_first(n: int, event: RequestReceived, stream: trio.abc.Stream) -> None:
    """Resets the connection (a TCP RST) instead of the first answer; then behaves."""
    if n == 1:
        assert isinstance(stream, trio.SocketStream)
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        raise DeviceClosedError  # closed with a zero linger: a reset
    await stream.send_all(answer_frame(event))


async def garbage_first(n: int, event: RequestReceived, stream: trio.abc.Stream) -> None:
    """Sends garbage (no valid MBAP header) for the first request; then behaves."""
    if n == 1:
        await stream.send_all(b"\xde\xad\xbe\xef" * 8)
        return
    await stream.send_all(answer_frame(event))


async def answer_then_close(_n: int, event: RequestReceived, stream: trio.abc.Stream) -> None:
    """Answers, then closes the connection (a device that keeps no idle connections)."""
    await stream.send_all(answer_frame(event))
    raise DeviceClosedError


def answers_pairs_reversed() -> Behaviour:
    """A device that answers requests 1 and 2 as 2 then 1, 3 and 4 as 4 then 3, and so on."""
    held: list[RequestReceived] = []

    async def behaviour(n: int, event: RequestReceived, stream: trio.abc.Stream) -> None:
        if n % 2:
            held.append(event)
            return
        await stream.send_all(answer_frame(event) + answer_frame(held.pop()))

    return behaviour


FIRST_ANSWER_FAULTS = pytest.mark.parametrize(
    ("behaviour", "fault"),
    [
        (late(0.45), "a late answer"),
        (wrong_transaction_first, "a wrong transaction id"),
        (short_answer_first, "an answer with a register too few"),
        (close_mid_frame_first, "a connection closed mid-frame"),
        (reset_first, "a connection reset"),
        (garbage_first, "garbage"),
    ],
)
"""Devices whose first answer goes wrong in a way one retry cures (a test takes
`behaviour` and `fault`, its name)."""


@dataclass
class _Device:
    behaviour: Behaviour
    requests: int = 0
    """Requests so far, over every connection."""


async def _serve_connection(device: _Device, stream: trio.abc.Stream) -> None:
    codec = TcpServerCodec()
    async with stream:
        while data := await stream.receive_some(4096):
            codec.receive_data(data)
            while (event := codec.next_event()) is not None:
                assert not isinstance(event, RequestRejected), event
                device.requests += 1
                try:
                    await device.behaviour(device.requests, event, stream)
                except DeviceClosedError:
                    return


async def serve_faulty_device(
    behaviour: Behaviour,
    *,
    port: int = 0,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `behaviour` on 127.0.0.1; reports the bound port. Request numbers count per device."""
    listeners = await trio.open_tcp_listeners(port, host="127.0.0.1")
    device = _Device(behaviour)

    async def handle(stream: trio.SocketStream) -> None:
        await _serve_connection(device, stream)

    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, handle, listeners)
        task_status.started(listeners[0].socket.getsockname()[1])


class StreamLink:
    """A `hubgate.modbus.socket_link.Link` over a Trio memory stream."""

    def __init__(
        self,
        stream: trio.StapledStream[trio.testing.MemorySendStream, trio.testing.MemoryReceiveStream],
    ) -> None:
        self.stream = stream

    async def send_all(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def receive_by(self, deadline: float, max_bytes: int = 65536) -> bytes | None:
        with trio.move_on_at(deadline):
            return bytes(await self.stream.receive_some(max_bytes))
        return None

    def close(self) -> None:
        self.stream.send_stream.close()
        self.stream.receive_stream.close()


@dataclass
class MemoryDevices:
    """Faulty devices by port, reached in memory through `connect` (a `TcpMaster`'s
    `connect`); each connection is served in `nursery`. A port nobody serves refuses."""

    nursery: trio.Nursery
    devices: dict[int, _Device] = field(default_factory=dict)

    def serve(self, port: int, behaviour: Behaviour) -> None:
        """A device with `behaviour` on `port` from now on."""
        self.devices[port] = _Device(behaviour)

    async def connect(self, host: str, port: int) -> StreamLink:
        device = self.devices.get(port)
        if device is None:
            raise ConnectionRefusedError(errno.ECONNREFUSED, f"{host}:{port}: connection refused")
        master_end, device_end = trio.testing.memory_stream_pair()
        self.nursery.start_soon(_serve_connection, device, device_end)
        await trio.lowlevel.checkpoint()
        return StreamLink(master_end)
