"""Accept loops that keep each listener within its share of the process's descriptors.

`serve_guarded` replaces `trio.serve_listeners` for hubgate's listeners (OCPP, Modbus
server, API):

- at most `max_connections` connections count against a listener; one more evicts the
  connection that has been quiet longest, so a flood of idle connections cannot lock out
  the clients that keep talking;
- a connection its protocol marks established (`GuardedStream.establish`: an admitted
  OCPP charger, one per configured identity) leaves that count and is never evicted;
- when `accept` fails for want of descriptors (EMFILE, ENFILE, ENOBUFS, ENOMEM) the loop
  evicts the quietest connection and backs off (10 ms doubling up to 1 s), logging one
  line per 10 s, instead of trio's traceback every 100 ms.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import trio

from hubgate.log_limits import RateLimitedLog

LOG = logging.getLogger("hubgate.listeners")

OUT_OF_DESCRIPTORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
BACKOFF_S = (0.01, 1.0)
"""First and longest wait after `accept` failed for want of descriptors."""


class GuardedStream(trio.abc.HalfCloseableStream):
    """An accepted connection that remembers when it last received anything."""

    def __init__(
        self,
        stream: trio.SocketStream,
        clock: Callable[[], float],
        on_established: Callable[[GuardedStream], None],
    ) -> None:
        self.stream = stream
        self.socket = stream.socket
        self._clock = clock
        self.last_active = clock()
        self._on_established = on_established

    def establish(self) -> None:
        """The peer is admitted: no longer counted against the cap nor evicted."""
        self._on_established(self)

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        data = await self.stream.receive_some(max_bytes)
        self.last_active = self._clock()
        return data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.stream.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        await self.stream.send_eof()

    async def aclose(self) -> None:
        await self.stream.aclose()

    def setsockopt(self, level: int, option: int, value: Any) -> None:
        """As `trio.SocketStream.setsockopt`."""
        self.stream.setsockopt(level, option, value)

    def getsockopt(self, level: int, option: int, buffersize: int = 0) -> Any:
        """As `trio.SocketStream.getsockopt`."""
        return self.stream.getsockopt(level, option, buffersize)

    def evict(self) -> None:
        """Close the socket now: the descriptor is free at once, and the task serving it
        gets `ClosedResourceError` at its next receive or send."""
        self.socket.close()


class ConnectionGuard:
    """The open connections of one listener, its cap, and what it had to do about them."""

    def __init__(
        self, name: str, max_connections: int, *, clock: Callable[[], float] = trio.current_time
    ) -> None:
        if max_connections < 1:
            raise ValueError(f"{name}: max_connections must be 1 or more, got {max_connections}")
        self.name = name
        self.max_connections = max_connections
        self.clock = clock
        self._open: set[GuardedStream] = set()
        self._pending: set[GuardedStream] = set()
        """The open ones not established yet: counted against the cap, may be evicted."""
        self.evicted = 0
        """Connections closed to make room (over the cap or out of descriptors)."""
        self.accept_failures = 0
        """`accept` calls that failed for want of descriptors."""
        self._log = RateLimitedLog(LOG, clock=clock)

    @property
    def counted(self) -> int:
        """Open connections that count against the cap."""
        return len(self._pending)

    @property
    def open(self) -> int:
        """Every open connection, established ones included."""
        return len(self._open)

    def admit(self, stream: trio.SocketStream) -> GuardedStream:
        """Track a new connection; evict the quietest one when it takes the count over the cap."""
        guarded = GuardedStream(stream, self.clock, self._pending.discard)
        if self.counted >= self.max_connections:
            self.evict_quietest(f"over the cap of {self.max_connections}")
        self._open.add(guarded)
        self._pending.add(guarded)
        return guarded

    def forget(self, stream: GuardedStream) -> None:
        """The connection is over."""
        self._open.discard(stream)
        self._pending.discard(stream)

    def evict_quietest(self, why: str) -> bool:
        """Close the unestablished connection that received nothing for longest."""
        if not self._pending:
            return False
        quietest = min(self._pending, key=lambda stream: stream.last_active)
        self.forget(quietest)
        quietest.evict()
        self.evicted += 1
        self._log.warning(
            "evict",
            "%s: closed the quietest connection (%s; %d so far)",
            self.name,
            why,
            self.evicted,
        )
        return True

    def out_of_descriptors(self, error: OSError) -> None:
        """`accept` failed for want of descriptors: make room and say so (rate-limited)."""
        self.accept_failures += 1
        self._log.warning(
            "descriptors",
            "%s: cannot accept: %s (%d failed accepts so far); backing off",
            self.name,
            errno.errorcode.get(error.errno or 0, error),
            self.accept_failures,
        )
        self.evict_quietest("out of file descriptors")


Handler = Callable[[GuardedStream], Awaitable[None]]


async def serve_guarded(
    handler: Handler,
    listeners: Sequence[trio.SocketListener],
    guard: ConnectionGuard,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Accept on every listener until cancelled; each connection runs `handler` in its own
    task and is closed when the handler returns."""
    async with trio.open_nursery() as nursery:
        for listener in listeners:
            nursery.start_soon(_accept_forever, listener, handler, guard, nursery)
        task_status.started()


async def _accept_forever(
    listener: trio.SocketListener, handler: Handler, guard: ConnectionGuard, nursery: trio.Nursery
) -> None:
    backoff = BACKOFF_S[0]
    async with listener:
        while True:
            try:
                stream = await listener.accept()
            except OSError as error:
                if error.errno not in OUT_OF_DESCRIPTORS:
                    raise
                guard.out_of_descriptors(error)
                await trio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_S[1])
                continue
            backoff = BACKOFF_S[0]
            nursery.start_soon(_serve_one, handler, guard.admit(stream), guard)


async def _serve_one(handler: Handler, stream: GuardedStream, guard: ConnectionGuard) -> None:
    try:
        await handler(stream)
    finally:
        guard.forget(stream)
        await trio.aclose_forcefully(stream)
