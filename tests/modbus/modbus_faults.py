"""Misbehaving Modbus TCP devices on Trio: the fault injectors of the transport tests.

Each device decodes requests with hubgate's own server codec and hands every
request to a `Behaviour`, which decides what goes back on the wire: the right
answer, nothing, a late answer, a wrong transaction id, half a frame, garbage.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable

import trio

from hubgate._core import Request, RequestReceived, RequestRejected, Response, TcpServerCodec

REGISTERS = list(range(100, 200))
"""What every faulty device holds at addresses 0-99 (when it answers)."""

Behaviour = Callable[[int, RequestReceived, trio.SocketStream], Awaitable[None]]
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


async def answer(_n: int, event: RequestReceived, stream: trio.SocketStream) -> None:
    """A well-behaved device."""
    await stream.send_all(answer_frame(event))


async def silent(_n: int, _event: RequestReceived, _stream: trio.SocketStream) -> None:
    """A device that never answers."""


def late(delay_s: float) -> Behaviour:
    """Answers the first request after `delay_s`, the others at once."""

    async def behaviour(n: int, event: RequestReceived, stream: trio.SocketStream) -> None:
        if n == 1:
            await trio.sleep(delay_s)
        await stream.send_all(answer_frame(event))

    return behaviour


async def wrong_transaction_first(
    n: int, event: RequestReceived, stream: trio.SocketStream
) -> None:
    """Answers the first request with another transaction id, then correctly."""
    tid = (event.transaction_id + 0x5555) & 0xFFFF if n == 1 else None
    await stream.send_all(answer_frame(event, transaction_id=tid))


async def close_mid_frame_first(n: int, event: RequestReceived, stream: trio.SocketStream) -> None:
    """Sends half of the first answer and closes the connection; then behaves."""
    if n == 1:
        await stream.send_all(answer_frame(event)[:5])
        raise DeviceClosedError
    await stream.send_all(answer_frame(event))


async def garbage_first(n: int, event: RequestReceived, stream: trio.SocketStream) -> None:
    """Sends garbage (no valid MBAP header) for the first request; then behaves."""
    if n == 1:
        await stream.send_all(b"\xde\xad\xbe\xef" * 8)
        return
    await stream.send_all(answer_frame(event))


async def answer_then_close(_n: int, event: RequestReceived, stream: trio.SocketStream) -> None:
    """Answers, then closes the connection (a device that keeps no idle connections)."""
    await stream.send_all(answer_frame(event))
    raise DeviceClosedError


def answers_pairs_reversed() -> Behaviour:
    """A device that answers requests 1 and 2 as 2 then 1, 3 and 4 as 4 then 3, and so on."""
    held: list[RequestReceived] = []

    async def behaviour(n: int, event: RequestReceived, stream: trio.SocketStream) -> None:
        if n % 2:
            held.append(event)
            return
        await stream.send_all(answer_frame(event) + answer_frame(held.pop()))

    return behaviour


async def serve_faulty_device(
    behaviour: Behaviour,
    *,
    port: int = 0,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `behaviour` on 127.0.0.1; reports the bound port. Request numbers count per device."""
    listeners = await trio.open_tcp_listeners(port, host="127.0.0.1")
    count = 0

    async def handle(stream: trio.SocketStream) -> None:
        nonlocal count
        codec = TcpServerCodec()
        async with stream:
            while data := await stream.receive_some(4096):
                codec.receive_data(data)
                while (event := codec.next_event()) is not None:
                    assert not isinstance(event, RequestRejected), event
                    count += 1
                    try:
                        await behaviour(count, event, stream)
                    except DeviceClosedError:
                        return

    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, handle, listeners)
        task_status.started(listeners[0].socket.getsockname()[1])


def free_port() -> int:
    """A loopback port nobody listens on (connections to it are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
