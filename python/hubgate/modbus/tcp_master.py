"""Modbus TCP master on Trio: one connection per host:port, shared by every unit id behind it.

    async with open_tcp_master("10.0.0.5", 502) as master:
        meter = ModbusDevice(master, unit=1)
        registers = await meter.read_registers(40000, 10)

One request is in flight at a time unless `max_in_flight` allows pipelining.
Each attempt has its own timeout; failed attempts (timeout, lost connection,
a frame that does not answer) are retried; an exception response is not.
Responses are matched to requests by transaction id, so a late or stray
answer is dropped and never taken for the next request's. There is no reader
task: a waiting request reads the socket itself (one at a time) and hands
each response to the request it answers, which saves a task switch per
request, and the socket is a `SocketLink` (or whatever `Link` the `connect` given opens).
A lost connection is reopened on demand, with exponential backoff and jitter after
repeated failures.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio

from hubgate._core import (
    FrameError,
    Request,
    Response,
    ResponseReceived,
    ResponseRejected,
    TcpClientCodec,
)
from hubgate.backoff import Backoff
from hubgate.fencing import check_send
from hubgate.modbus.errors import (
    ModbusBadResponseError,
    ModbusConnectionError,
    ModbusError,
    ModbusTimeoutError,
)
from hubgate.modbus.master import check_response, stats_of
from hubgate.modbus.reconnect import DEFAULT_BACKOFF, ReconnectGate
from hubgate.modbus.socket_link import Connect, Link, SocketLink
from hubgate.modbus.stats import RequestStats

log = logging.getLogger(__name__)

_LINK_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)
_RETRIED = (ModbusTimeoutError, ModbusConnectionError, ModbusBadResponseError)


@dataclass
class _Waiter:
    done: trio.Event = field(default_factory=trio.Event)
    outcome: Response | ModbusError | None = None

    def finish(self, outcome: Response | ModbusError) -> None:
        self.outcome = outcome
        self.done.set()


@dataclass
class _Connection:
    stream: Link
    codec: TcpClientCodec = field(default_factory=TcpClientCodec)
    waiters: dict[int, _Waiter] = field(default_factory=dict)
    send_lock: trio.Lock = field(default_factory=trio.Lock)
    read_lock: trio.Lock = field(default_factory=trio.Lock)
    closed: bool = False


async def _acquire(lock: trio.Lock | trio.Semaphore) -> None:
    """Take `lock`, without a trip to the scheduler when it is free."""
    try:
        lock.acquire_nowait()
    except trio.WouldBlock:
        await lock.acquire()


class TcpMaster:
    """The master side of one Modbus TCP connection (see the module docstring)."""

    def __init__(
        self,
        host: str,
        port: int = 502,
        *,
        timeout_s: float = 1.0,
        retries: int = 1,
        max_in_flight: int = 1,
        backoff: Backoff = DEFAULT_BACKOFF,
        rng: random.Random | None = None,
        connect: Connect = SocketLink.connect,
    ) -> None:
        """`connect` opens the link (a TCP socket; tests hand in memory streams)."""
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be above 0, got {timeout_s}")
        if retries < 0 or max_in_flight < 1:
            raise ValueError("retries must be 0 or more and max_in_flight 1 or more")
        self.host = host
        self.port = port
        self._name = f"{host}:{port}"  # made once: every request's checks name the link
        self.timeout_s = timeout_s
        self.retries = retries
        self._slots = trio.Semaphore(max_in_flight)
        self._pipelined = max_in_flight > 1
        self._connect_lock = trio.Lock()
        self._open_link = connect
        self._connection: _Connection | None = None
        self._gate = ReconnectGate(self.name, backoff, rng or random.Random())
        self._stats: dict[int, RequestStats] = {}
        self.connections_opened = 0
        """How many times a connection was established."""
        self.stray_frames = 0
        """Frames that answered no pending request (late, wrong transaction id)."""

    @property
    def name(self) -> str:
        """`host:port`."""
        return self._name

    @property
    def stats(self) -> dict[int, RequestStats]:
        """Request statistics per unit id."""
        return self._stats

    async def request(
        self, unit: int, request: Request, *, timeout_s: float | None = None
    ) -> Response:
        """Send `request` to `unit`; see `Master.request`."""
        timeout_s = timeout_s or self.timeout_s
        for _ in range(self.retries):
            try:
                return await self._attempt(unit, request, timeout_s)
            except _RETRIED:
                pass
        return await self._attempt(unit, request, timeout_s)

    async def aclose(self) -> None:
        """Close the connection; the next request opens a new one."""
        if self._connection is not None:
            self._drop(self._connection, "closed by hubgate")

    async def _attempt(self, unit: int, request: Request, timeout_s: float) -> Response:
        stats = stats_of(self._stats, unit)
        deadline = trio.current_time() + timeout_s
        await trio.lowlevel.checkpoint_if_cancelled()
        if trio.current_effective_deadline() <= deadline:
            # An enclosing deadline comes first and cancels this attempt: no scope of our own
            # (a cancel scope costs more than the rest of the attempt's Python).
            return await self._attempt_until(unit, request, stats, deadline)
        with trio.CancelScope(deadline=deadline):  # not move_on_at: no generator around it
            return await self._attempt_until(unit, request, stats, deadline)
        stats.record_timeout()
        raise ModbusTimeoutError(f"no answer from {self.name}/{unit} within {timeout_s:g} s")

    async def _attempt_until(
        self, unit: int, request: Request, stats: RequestStats, deadline: float
    ) -> Response:
        await _acquire(self._slots)
        try:
            try:
                connection = self._connection
                if connection is None or connection.closed:
                    connection = await self._connect(deadline)
                started = trio.current_time()
                if self._pipelined:
                    outcome = await self._exchange(connection, unit, request)
                else:
                    outcome = await self._exchange_alone(connection, unit, request)
            except ModbusError:
                stats.record_error()
                raise
            if isinstance(outcome, ModbusError):
                stats.record_error()
                raise outcome
            response = check_response(
                self.name, unit, outcome, stats, trio.current_time() - started
            )
            self._gate.succeeded()
            return response
        finally:
            self._slots.release()

    async def _connect(self, deadline: float) -> _Connection:
        async with self._connect_lock:
            if self._connection is not None and not self._connection.closed:
                return self._connection
            await self._gate.wait(deadline)
            try:
                stream = await self._open_link(self.host, self.port)
            except OSError as exc:
                self._gate.failed(trio.current_time(), f"cannot connect: {exc}")
                raise ModbusConnectionError(f"{self.name}: cannot connect: {exc}") from exc
            connection = self._connection = _Connection(stream)
            self.connections_opened += 1
            return connection

    async def _exchange_alone(
        self, connection: _Connection, unit: int, request: Request
    ) -> Response | ModbusError:
        """One request at a time (the slot's holder is the only sender and reader): no
        waiter, no event, no lock; the socket is read only once the answer can be there."""
        codec = connection.codec
        transaction_id, frame = codec.encode_request(unit, request)
        outcome: Response | ModbusError | None = None
        try:
            check_send()
            await connection.stream.send_all(frame)
            while outcome is None:
                data = await connection.stream.receive_next()
                if not data:
                    self._drop(connection, "connection closed by the device")
                    return ModbusConnectionError(f"{self.name}: connection closed by the device")
                codec.receive_data(data)
                while (event := codec.next_event()) is not None:
                    if isinstance(event, ResponseReceived):
                        if event.transaction_id == transaction_id:
                            outcome = event.response
                        continue
                    self._stray(event)
                    if event.transaction_id == transaction_id:
                        outcome = ModbusBadResponseError(
                            f"{self.name}/{event.unit}: {event.reason}"
                        )
        except FrameError as exc:
            reason = f"bad frame header: {exc}"
            self._drop(connection, reason)
            return ModbusConnectionError(f"{self.name}: {reason}")
        except _LINK_ERRORS as exc:
            reason = f"connection lost: {exc or type(exc).__name__}"
            self._drop(connection, reason)
            return ModbusConnectionError(f"{self.name}: {reason}")
        finally:
            if outcome is None:
                codec.forget(transaction_id)
        return outcome

    async def _exchange(
        self, connection: _Connection, unit: int, request: Request
    ) -> Response | ModbusError:
        transaction_id, frame = connection.codec.encode_request(unit, request)
        waiter = connection.waiters[transaction_id] = _Waiter()
        try:
            async with connection.send_lock:
                check_send()
                await connection.stream.send_all(frame)
            while not waiter.done.is_set():
                # One waiting request reads at a time; the others queue for the socket and
                # usually find their response delivered when their turn comes.
                await _acquire(connection.read_lock)
                try:
                    if not waiter.done.is_set():
                        await self._receive(connection)
                finally:
                    connection.read_lock.release()
        except _LINK_ERRORS as exc:
            self._drop(connection, f"connection lost: {exc or type(exc).__name__}")
        finally:
            if not waiter.done.is_set():
                connection.waiters.pop(transaction_id, None)
                connection.codec.forget(transaction_id)
        assert waiter.outcome is not None
        return waiter.outcome

    async def _receive(self, connection: _Connection) -> None:
        """Read once and hand every complete response to its request."""
        data = await connection.stream.receive_some(65536)
        if not data:
            self._drop(connection, "connection closed by the device")
            return
        connection.codec.receive_data(data)
        try:
            while (event := connection.codec.next_event()) is not None:
                self._dispatch(connection, event)
        except FrameError as exc:
            self._drop(connection, f"bad frame header: {exc}")

    def _dispatch(
        self, connection: _Connection, event: ResponseReceived | ResponseRejected
    ) -> None:
        if isinstance(event, ResponseReceived):
            waiter = connection.waiters.pop(event.transaction_id, None)
            if waiter is not None:
                waiter.finish(event.response)
            return
        self._stray(event)
        if event.transaction_id is not None:
            waiter = connection.waiters.pop(event.transaction_id, None)
            if waiter is not None:
                waiter.finish(ModbusBadResponseError(f"{self.name}/{event.unit}: {event.reason}"))

    def _stray(self, event: ResponseRejected) -> None:
        self.stray_frames += 1
        log.debug("%s: dropped a frame from unit %d: %s", self.name, event.unit, event.reason)

    def _drop(self, connection: _Connection, reason: str) -> None:
        """Close `connection`: fail every waiting request, reconnect on the next one."""
        if connection.closed:
            return
        connection.closed = True
        self._gate.lost(trio.current_time(), reason)
        log.info("%s: %s", self.name, reason)
        for waiter in connection.waiters.values():
            waiter.finish(ModbusConnectionError(f"{self.name}: {reason}"))
        connection.waiters.clear()
        connection.stream.close()


@asynccontextmanager
async def open_tcp_master(
    host: str,
    port: int = 502,
    *,
    timeout_s: float = 1.0,
    retries: int = 1,
    max_in_flight: int = 1,
    backoff: Backoff = DEFAULT_BACKOFF,
    rng: random.Random | None = None,
    connect: Connect = SocketLink.connect,
) -> AsyncIterator[TcpMaster]:
    """A `TcpMaster` whose connection is closed on exit."""
    master = TcpMaster(
        host,
        port,
        timeout_s=timeout_s,
        retries=retries,
        max_in_flight=max_in_flight,
        backoff=backoff,
        rng=rng,
        connect=connect,
    )
    try:
        yield master
    finally:
        await master.aclose()
