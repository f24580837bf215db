"""A TCP connection driven by readiness waits: at most one trip to the scheduler per exchange.

`trio.SocketStream` yields to the scheduler after every successful send and
receive, three trips for a Modbus request and its response. Here a send the
kernel takes at once returns without yielding and a receive waits only while
nothing has arrived, so a request/response exchange costs one trip, none when the
answer comes within a brief block (`hubgate.modbus.readiness`).
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Protocol

import trio

from hubgate.modbus.readiness import Readable


class Link(Protocol):
    """A byte stream to one Modbus TCP device, as `TcpMaster` uses it."""

    async def send_all(self, data: bytes) -> None:
        """Send every byte."""

    async def receive_by(self, deadline: float, max_bytes: int = 65536) -> bytes | None:
        """The bytes that arrive first, b"" at end of file, or None once Trio's clock
        reached `deadline` with none: for an answer that cannot be there yet."""

    def close(self) -> None:
        """Close the link, waking any task waiting on it."""


Connect = Callable[[str, int], Awaitable[Link]]
"""Opens a `Link` to host, port; raises `OSError` when it cannot."""


class SocketLink:
    """A connected, non-blocking TCP socket with `TCP_NODELAY` set."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.socket = sock
        self.fd = sock.fileno()
        self.readable = Readable(sock)

    @classmethod
    async def connect(cls, host: str, port: int) -> SocketLink:
        """Connect to the first address of `host` that accepts; raise `OSError` if none does
        (`ConnectionRefusedError` when the last one refused)."""
        errors: list[str] = []
        code = errno.ECONNREFUSED  # the last address's error: a refusal only if it refused
        for family, kind, proto, _name, address in await trio.socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        ):
            sock = socket.socket(family, kind, proto)
            try:
                sock.setblocking(False)
                try:
                    sock.connect(address)
                except BlockingIOError:
                    await trio.lowlevel.wait_writable(sock)
                    code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if code:
                        raise OSError(code, os.strerror(code)) from None
            except OSError as exc:
                sock.close()
                errors.append(f"{address[0]}: {exc.strerror or exc}")
                code = exc.errno or errno.EIO
                continue
            except BaseException:
                sock.close()
                raise
            return cls(sock)
        raise OSError(code, f"no address of {host}:{port} accepts ({'; '.join(errors)})")

    async def send_all(self, data: bytes) -> None:
        """Send every byte; waits only while the kernel's buffer is full."""
        try:
            sent = self.socket.send(data)
        except BlockingIOError:
            sent = 0
        if sent == len(data):
            return
        view = memoryview(data)[sent:]
        while view:
            try:
                view = view[self.socket.send(view) :]
            except BlockingIOError:
                await trio.lowlevel.wait_writable(self.socket)

    async def receive_by(self, deadline: float, max_bytes: int = 65536) -> bytes | None:
        """Wait until bytes have arrived, then take them (b"" at end of file); None once
        Trio's clock reached `deadline` first. The wait skips Trio's scheduler when the
        answer comes within a brief block (`hubgate.modbus.readiness`); no read is tried
        before it (the answer cannot be there yet)."""
        while True:
            readable = self.readable
            ready = readable.briefly(deadline)  # one coroutine less than `by`: a hot path
            if ready is None:
                ready = await readable.in_trio(deadline)
            if not ready:
                return None
            try:
                return self.socket.recv(max_bytes)
            except BlockingIOError:
                continue

    def close(self) -> None:
        """Close the socket, waking any task waiting on it (with `ClosedResourceError`)."""
        if self.socket.fileno() >= 0:
            trio.lowlevel.notify_closing(self.socket)
            self.socket.close()
