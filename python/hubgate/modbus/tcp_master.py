"""Modbus TCP master on Trio: one connection per host:port, shared by every unit id behind it.

    async with open_tcp_master("10.0.0.5", 502) as master:
        meter = ModbusDevice(master, unit=1)
        registers = await meter.read_registers(40000, 10)

Callers take turns on the connection: one request, or one read plan, at a time.
A read plan (`read_plan`), and a request (`request`: a write) as a plan of one, is
encoded, matched and decoded in Rust (`PlanExchange`) under one deadline per round trip; a device that answers
pipelined requests (`max_in_flight` above 1, from its profile) gets that many of
the plan's requests at once, and one that turns out not to (it answers only some
of them) is read one request at a time from then on. A device that needs a pause
between requests (`delay_s`, its profile's `inter_request_delay_ms`) gets each of
its requests only once the connection has been quiet that long since its last
exchange with any unit ended (the pause does not count against the timeout), and
is never pipelined. Each attempt has its own
timeout; failed attempts (timeout, lost connection, a frame that does not answer)
are retried; an exception response is not. Responses are matched to requests by
transaction id, so a late or stray answer is dropped and never taken for the
next request's. There is no reader task: the caller reads the socket itself, only
once the answer can be there, and the socket is a `SocketLink` (or whatever
`Link` the `connect` given opens). A lost connection is reopened on demand, with
exponential backoff and jitter after repeated failures (a second at most while the
device refuses: `reconnect.REFUSED_RETRY_S`).
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal

import trio

from hubgate._core import (
    FrameError,
    PlanExchange,
    PlanGroup,
    ReadPlan,
    Request,
    Response,
    ResponseRejected,
    TcpClientCodec,
    Turn,
)
from hubgate.backoff import Backoff
from hubgate.fencing import SEND_GUARD, check_send
from hubgate.modbus.codec import FieldValue
from hubgate.modbus.errors import (
    RETRIED,
    ModbusBadResponseError,
    ModbusConnectionError,
    ModbusError,
    ModbusExceptionError,
    ModbusTimeoutError,
)
from hubgate.modbus.master import stats_of
from hubgate.modbus.plan_flight import Outcome, end_flight
from hubgate.modbus.reconnect import DEFAULT_BACKOFF, ReconnectGate
from hubgate.modbus.socket_link import Connect, Link, SocketLink
from hubgate.modbus.stats import RequestStats

log = logging.getLogger(__name__)

_BROKEN = (FrameError, trio.BrokenResourceError, trio.ClosedResourceError, OSError)
"""What ends a connection mid-exchange (`_broken_reason` says which)."""


def _broken_reason(exc: BaseException) -> str:
    """Why a connection is dropped after `exc` (one of `_BROKEN`)."""
    if isinstance(exc, FrameError):
        return f"bad frame header: {exc}"
    return f"connection lost: {exc or type(exc).__name__}"


@dataclass
class _Connection:
    stream: Link
    codec: TcpClientCodec = field(default_factory=TcpClientCodec)
    closed: bool = False
    socket: SocketLink | None = field(init=False)
    """The stream when it is a `SocketLink` (read plans over it in Rust), else None."""

    def __post_init__(self) -> None:
        self.socket = self.stream if type(self.stream) is SocketLink else None


class TcpMaster:
    """The master side of one Modbus TCP connection (see the module docstring)."""

    def __init__(
        self,
        host: str,
        port: int = 502,
        *,
        timeout_s: float = 1.0,
        retries: int = 1,
        backoff: Backoff = DEFAULT_BACKOFF,
        rng: random.Random | None = None,
        connect: Connect = SocketLink.connect,
    ) -> None:
        """`connect` opens the link (a TCP socket; tests hand in memory streams)."""
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be above 0, got {timeout_s}")
        if retries < 0:
            raise ValueError(f"retries must be 0 or more, got {retries}")
        self.host = host
        self.port = port
        self._name = f"{host}:{port}"  # made once: every request's checks name the link
        self.timeout_s = timeout_s
        self.retries = retries
        self._turn = Turn()
        """Whether the connection is in use, since when it is quiet, the callers waiting
        for it (in Rust: a `PlanGroup` ends a plan's turn there)."""
        self._waiting = trio.lowlevel.ParkingLot()
        self._open_link = connect
        self._connection: _Connection | None = None
        self._gate = ReconnectGate(self.name, backoff, rng or random.Random())
        self._stats: dict[int, RequestStats] = {}
        self._one_at_a_time: set[int] = set()
        self.connections_opened = 0
        """How many times a connection was established."""

    @property
    def name(self) -> str:
        """`host:port`."""
        return self._name

    @property
    def stray_frames(self) -> int:
        """Frames that answered no pending request (late, wrong transaction id)."""
        return self._turn.strays

    @property
    def stats(self) -> dict[int, RequestStats]:
        """Request statistics per unit id."""
        return self._stats

    def dial_again(self) -> None:
        """Let the next connection attempt start at once, whatever failed before (a
        gateway that has just taken the lead: a device that refused it while it held
        the old leader's connection may take it now, not at the end of its backoff)."""
        self._gate.succeeded()

    async def request(
        self,
        unit: int,
        request: Request,
        *,
        timeout_s: float | None = None,
        delay_s: float = 0.0,
    ) -> Response:
        """Send `request` to `unit`; see `Master.request`."""
        timeout_s = timeout_s or self.timeout_s
        retries = self.retries
        while True:
            exchange = PlanExchange.request(unit, request)
            try:
                outcome = await self._plan_attempt(unit, exchange, timeout_s, delay_s)
            except RETRIED:
                if not retries:
                    raise
                retries -= 1
            else:
                assert not isinstance(outcome, list)  # one request: its response
                return outcome

    async def read_plan(
        self,
        unit: int,
        plan: ReadPlan,
        *,
        max_in_flight: int = 1,
        timeout_s: float | None = None,
        delay_s: float = 0.0,
    ) -> list[FieldValue]:
        """Every field of `plan` from `unit`, `max_in_flight` requests at a time; see
        `Master.read_plan`. The timeout applies to each round trip."""
        timeout_s = timeout_s or self.timeout_s
        retries = self.retries
        while True:
            if delay_s or unit in self._one_at_a_time:
                max_in_flight = 1
            exchange = PlanExchange(unit, plan, max_in_flight)
            try:
                outcome = await self._plan_attempt(unit, exchange, timeout_s, delay_s)
            except RETRIED:
                if not retries:
                    raise
                retries -= 1
            else:
                assert isinstance(outcome, list)  # a plan: its fields' values
                return outcome

    def start_plan(
        self,
        group: PlanGroup,
        index: int,
        unit: int,
        plan: ReadPlan,
        max_in_flight: int,
        now: float,
        delay_s: float = 0.0,
    ) -> Outcome | Literal[True] | None:
        """Start `plan` in `group` as its `index` now (Trio's clock at `now`; its first
        requests once the pause `delay_s` is over), when the connection is open, on a
        socket and idle; the group then drives it (`hubgate.modbus.plan_group`). True
        while it is in flight, its outcome when it ended at once (`end_flight`), None
        when it cannot start: use `read_plan`."""
        connection = self._connection
        turn = self._turn
        if turn.busy or connection is None or connection.closed or connection.socket is None:
            return None
        if delay_s or unit in self._one_at_a_time:
            max_in_flight = 1
        stats = self._stats.get(unit) or stats_of(self._stats, unit)
        check = check_send if SEND_GUARD.get() is not None else None
        fd, clean = connection.socket.fd, not self._gate.failures
        ended = group.add(
            index,
            unit,
            plan,
            max_in_flight,
            connection.codec,
            fd,
            now,
            self.timeout_s,
            delay_s,
            turn,
            stats,
            clean,
            check,
        )
        if ended is None:
            return True
        exchange, value = ended[1], ended[2]
        if exchange is None:  # its values, counted in the group
            return value  # type: ignore[no-any-return]
        return end_flight(self, unit, exchange, value, ended[3], now, delay_s)

    async def aclose(self) -> None:
        """Close the connection; the next request opens a new one."""
        if self._connection is not None:
            self._drop(self._connection, "closed by hubgate")

    async def _plan_attempt(
        self, unit: int, exchange: PlanExchange, timeout_s: float, delay_s: float
    ) -> list[FieldValue] | Response:
        """One attempt of `exchange` (a plan's or one request's), counted in the unit's
        stats: the fields' values or the response, else raises its `ModbusError`."""
        stats = self._stats.get(unit) or stats_of(self._stats, unit)
        connection = self._connection
        if (
            delay_s
            or self._turn.busy
            or connection is None
            or connection.closed
            or connection.socket is None
        ):
            connection, started, deadline = await self._start(unit, stats, timeout_s, delay_s)
            try:
                outcome, rounds = await self._exchange_plan(
                    connection, unit, exchange, deadline, timeout_s, delay_s
                )
            finally:
                ended = trio.current_time()
                self._end_turn(ended)
        else:  # the common case, an open and idle socket: no turn to wait for, no pause
            await trio.lowlevel.checkpoint_if_cancelled()
            self._turn.busy = True
            try:
                outcome = await self._plan_on_socket(connection, unit, exchange, timeout_s)
            except BaseException:
                self._end_turn(trio.current_time())
                raise
            started, ended = exchange.started, exchange.ended  # Trio's clock, read in Rust
            self._end_turn(ended)
            rounds = exchange.rounds
        waited = ended - started
        if delay_s and rounds > 1:
            waited -= (rounds - 1) * delay_s  # not the pauses between them
        self._count_plan(stats, exchange, outcome, waited, rounds)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def _start(
        self, unit: int, stats: RequestStats, timeout_s: float, delay_s: float
    ) -> tuple[_Connection, float, float]:
        """The connection's turn (the caller ends it, `_end_turn`), the connection opened
        if it must be and the device's pause waited out; returns the connection, when the
        exchange starts and its first round trip's deadline."""
        started = trio.current_time()
        deadline = started + timeout_s + delay_s
        await trio.lowlevel.checkpoint_if_cancelled()
        connection = self._connection
        if self._turn.busy or connection is None or connection.closed:
            connection, started = await self._wait_turn(unit, deadline, stats, started, timeout_s)
        else:
            self._turn.busy = True  # nothing to wait for: no cancel scope
        if delay_s:
            try:
                started = await self._pause(delay_s)
            except BaseException:
                self._end_turn(trio.current_time())
                raise
            deadline = started + timeout_s
        return connection, started, deadline

    async def _wait_turn(
        self, unit: int, deadline: float, stats: RequestStats, started: float, timeout_s: float
    ) -> tuple[_Connection, float]:
        """The connection's turn and an open connection, by `deadline`, when either needs a
        wait; returns the connection and when the exchange starts (later than `started`
        after a connect). The caller then ends the turn (`_end_turn`)."""
        with trio.CancelScope(deadline=deadline):
            await self._take_turn()
            try:
                connection = self._connection
                if connection is None or connection.closed:
                    connection = await self._connect(deadline, stats)
                    started = trio.current_time()
            except BaseException:
                self._end_turn(trio.current_time())
                raise
            return connection, started
        stats.record_timeout()
        raise self._timeout(unit, timeout_s)

    async def _take_turn(self) -> None:
        """Wait until no other caller uses the connection (a `trio.Lock` costs more)."""
        turn = self._turn
        if turn.busy:
            turn.waiting += 1
            try:
                await self._waiting.park()  # `_end_turn` hands the turn over
            finally:
                turn.waiting -= 1
        else:
            turn.busy = True

    async def _pause(self, delay_s: float) -> float:
        """Wait (the caller has the turn) until the connection has been quiet for `delay_s`;
        returns the time it ends."""
        await trio.sleep_until(self._turn.quiet_since + delay_s)
        return trio.current_time()

    def _end_turn(self, now: float) -> None:
        turn = self._turn
        turn.quiet_since = now
        if self._waiting:  # (`turn.waiting` may still count one cancelled while parked)
            self._waiting.unpark()
        else:
            turn.busy = False

    async def _connect(self, deadline: float, stats: RequestStats) -> _Connection:
        """A new connection (the caller has the turn)."""
        try:
            await self._gate.wait(deadline)
            try:
                stream = await self._open_link(self.host, self.port)
            except OSError as exc:
                refused = isinstance(exc, ConnectionRefusedError)
                self._gate.failed(trio.current_time(), f"cannot connect: {exc}", refused=refused)
                raise ModbusConnectionError(f"{self.name}: cannot connect: {exc}") from exc
        except ModbusError:
            stats.record_error()
            raise
        connection = self._connection = _Connection(stream)
        self.connections_opened += 1
        return connection

    def _timeout(self, unit: int, timeout_s: float) -> ModbusTimeoutError:
        return ModbusTimeoutError(f"no answer from {self.name}/{unit} within {timeout_s:g} s")

    async def _exchange_plan(
        self,
        connection: _Connection,
        unit: int,
        exchange: PlanExchange,
        deadline: float,
        timeout_s: float,
        delay_s: float,
    ) -> tuple[list[FieldValue] | Response | ModbusError, int]:
        """A plan's (or one request's) round trips, the caller's turn, the first answered by `deadline` and
        each later one within `timeout_s` of its request (not counting the pause
        `delay_s` before it); returns the outcome and the round trips (none when the plan
        has no requests)."""
        codec, stream = connection.codec, connection.stream
        if not delay_s and connection.socket is not None:
            outcome = await self._plan_on_socket(connection, unit, exchange, timeout_s)
            return outcome, exchange.rounds
        rounds = 0
        step: bytes | list[FieldValue] | Response | ResponseRejected | None
        step = exchange.start(codec)
        try:
            while True:
                if isinstance(step, bytes):
                    if delay_s and rounds:  # the answer that just came ended an exchange
                        self._turn.quiet_since = trio.current_time()
                        await self._pause(delay_s)
                    check_send()
                    await stream.send_all(step)
                    rounds += 1
                    if rounds > 1:  # each round trip gets timeout_s
                        deadline = trio.current_time() + timeout_s
                elif step is not None:
                    break
                data = await stream.receive_by(deadline)
                if data is None:
                    self._abandon(unit, exchange, codec)
                    return self._timeout(unit, timeout_s), rounds
                if not data:
                    return self._lost(connection, "connection closed by the device"), rounds
                step = exchange.receive(codec, data)
        except _BROKEN as exc:
            return self._lost(connection, _broken_reason(exc)), rounds
        except BaseException:  # cut short by an enclosing deadline
            self._abandon(unit, exchange, codec)
            raise
        finally:
            self._turn.strays += exchange.strays
        return self._plan_outcome(unit, step), rounds

    async def _plan_on_socket(
        self, connection: _Connection, unit: int, exchange: PlanExchange, timeout_s: float
    ) -> list[FieldValue] | Response | ModbusError:
        """`_exchange_plan` over a socket, for a device without a pause, each round trip
        within `timeout_s`: the round trips in Rust (`PlanExchange.drive`: one call while
        the answers come within brief blocks, `hubgate.modbus.readiness`), else after
        Trio's wait for the socket; `exchange.ended` is Trio's clock when it ended."""
        codec, link = connection.codec, connection.socket
        assert link is not None  # the callers' condition
        fd, readable = link.fd, link.readable
        guard = SEND_GUARD.get()  # a command's frames are each checked before they go
        step: list[FieldValue] | Response | ResponseRejected | bytes | bool | None = True
        try:
            while True:
                if step is True and guard is not None:
                    check_send()
                step = exchange.drive(codec, fd, readable, timeout_s, guard is None)
                if step is None:
                    if not await readable.in_trio(exchange.deadline):
                        exchange.ended = trio.current_time()
                        self._abandon(unit, exchange, codec)
                        return self._timeout(unit, timeout_s)
                elif step is not True:
                    break
        except _BROKEN as exc:
            return self._lost(connection, _broken_reason(exc))
        except BaseException:  # cut short by an enclosing deadline
            self._abandon(unit, exchange, codec)
            raise
        finally:
            self._turn.strays += exchange.strays
        if isinstance(step, list):  # the fields' values (without `_plan_outcome`'s call)
            return step
        if step == b"":
            return self._lost(connection, "connection closed by the device")
        return self._plan_outcome(unit, step)

    def _plan_outcome(self, unit: int, step: object) -> list[FieldValue] | Response | ModbusError:
        """What the step that ended a plan with `unit` says: its fields' values (one
        request's: its response), or the error of an exchange that ended badly (`_failure`)."""
        if isinstance(step, ResponseRejected | Response.Exception):
            return self._failure(unit, step)
        assert isinstance(step, list | Response)
        return step

    def _failure(self, unit: int, step: ResponseRejected | Response.Exception) -> ModbusError:
        """The error of an exchange with `unit` that ended badly: a frame claiming to answer
        it that does not (named by the unit it came from), or an exception response."""
        if isinstance(step, ResponseRejected):
            return ModbusBadResponseError(f"{self.name}/{step.unit}: {step.reason}")
        return ModbusExceptionError(f"{self.name}/{unit}", step.function, step.code)

    def _count_plan(
        self,
        stats: RequestStats,
        exchange: PlanExchange,
        outcome: list[FieldValue] | Response | Exception,
        latency_s: float,
        rounds: int,
    ) -> None:
        """Count how a plan (or one request) ended in `stats`: every request answered, each
        at the mean round trip (`read_plan`, `request` and `PlanInFlight` alike)."""
        if not isinstance(outcome, Exception):
            stats.record_ok(latency_s / max(rounds, 1), exchange.answered)
            if self._gate.failures:
                self._gate.succeeded()
        elif isinstance(outcome, ModbusExceptionError):
            stats.record_exception(latency_s)
        elif isinstance(outcome, ModbusTimeoutError):
            stats.record_timeout()
        else:
            stats.record_error()

    def _abandon(self, unit: int, exchange: PlanExchange, codec: TcpClientCodec) -> None:
        """Give up a plan before it ended (its deadline, or cut short): answers still to
        come are strays; a device that answered some of its pipelined requests, then not
        the others, is read one request at a time from now on."""
        exchange.abandon(codec)
        if exchange.window > 1 and exchange.answered and unit not in self._one_at_a_time:
            self._one_at_a_time.add(unit)
            log.warning(
                "%s/%d answered only %d of its pipelined requests: reading it one request"
                " at a time (check max_in_flight in its profile)",
                self.name,
                unit,
                exchange.answered,
            )

    def _lost(self, connection: _Connection, reason: str) -> ModbusConnectionError:
        self._drop(connection, reason)
        return ModbusConnectionError(f"{self.name}: {reason}")

    def _drop(self, connection: _Connection, reason: str) -> None:
        """Close `connection`; the next request opens a new one."""
        if connection.closed:
            return
        connection.closed = True
        self._gate.lost(trio.current_time(), reason)
        log.info("%s: %s", self.name, reason)
        connection.stream.close()


@asynccontextmanager
async def open_tcp_master(
    host: str,
    port: int = 502,
    *,
    timeout_s: float = 1.0,
    retries: int = 1,
    backoff: Backoff = DEFAULT_BACKOFF,
    rng: random.Random | None = None,
    connect: Connect = SocketLink.connect,
) -> AsyncIterator[TcpMaster]:
    """A `TcpMaster` whose connection is closed on exit."""
    master = TcpMaster(
        host, port, timeout_s=timeout_s, retries=retries, backoff=backoff, rng=rng, connect=connect
    )
    try:
        yield master
    finally:
        await master.aclose()
