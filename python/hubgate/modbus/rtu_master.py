"""Modbus RTU master on Trio: a serial line, or an RTU-over-TCP gateway.

    async with open_rtu_master(SerialLine(device="/dev/ttyUSB0", baud=9600)) as bus:
        meter = ModbusDevice(bus, unit=3)
        registers = await meter.read_registers(0, 10)

One bus carries many unit ids and strictly one request at a time (a FIFO lock).
Every frame is preceded by at least 3.5 character times of silence after the
last byte seen on the line; a broadcast (unit 0) is followed by the turnaround
delay the devices need to act on it, and a request to a device that needs a pause
between requests (`delay_s`, its profile's `inter_request_delay_ms`) by that pause
since the bus's last exchange ended (not counted against the timeout). A response ends when the codec has the
length its function code predicts and the CRC checks; bytes that cannot start
the expected response (noise, late answers) are skipped, and stale input is
flushed before each request on a serial line. A link that fails (device gone,
gateway closed the connection) is reopened on demand with backoff.
"""

from __future__ import annotations

import contextlib
import random
import termios
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import trio

from hubgate._core import ReadPlan, Request, Response, ResponseReceived, RtuClientCodec
from hubgate.backoff import Backoff
from hubgate.config.model import SerialLine
from hubgate.fencing import check_send
from hubgate.modbus.codec import FieldValue
from hubgate.modbus.errors import (
    RETRIED,
    ModbusBadResponseError,
    ModbusConnectionError,
    ModbusError,
    ModbusTimeoutError,
)
from hubgate.modbus.master import check_response, read_plan_in_turn, stats_of
from hubgate.modbus.reconnect import DEFAULT_BACKOFF, ReconnectGate
from hubgate.modbus.serial_line import RtuTiming, open_serial_line
from hubgate.modbus.stats import RequestStats

MAX_RTU_FRAME = 256
DEFAULT_TURNAROUND_S = 0.1
"""Wait after a broadcast (Modbus over Serial Line V1.02 §2.4.1: typically 100-200 ms)."""

OpenLink = Callable[[], Awaitable[trio.abc.Stream]]


class RtuMaster:
    """The master of one RTU bus (see the module docstring)."""

    def __init__(
        self,
        name: str,
        open_link: OpenLink,
        *,
        gap_s: float,
        flush_input: Callable[[trio.abc.Stream], None] | None = None,
        timeout_s: float = 1.0,
        retries: int = 1,
        turnaround_s: float = DEFAULT_TURNAROUND_S,
        backoff: Backoff = DEFAULT_BACKOFF,
        rng: random.Random | None = None,
    ) -> None:
        if not timeout_s > 0 or retries < 0:
            raise ValueError("timeout_s must be above 0 and retries 0 or more")
        self._name = name
        self.timeout_s = timeout_s
        self.retries = retries
        self.gap_s = gap_s
        self.turnaround_s = turnaround_s
        self._open_link = open_link
        self._flush_input = flush_input
        self._bus = trio.Lock()
        self._link: trio.abc.Stream | None = None
        self._codec = RtuClientCodec()
        self._quiet_until = -float("inf")
        self._ended_at = -float("inf")
        """When the last exchange (or broadcast) on the bus ended."""
        self._gate = ReconnectGate(name, backoff, rng or random.Random())
        self._stats: dict[int, RequestStats] = {}
        self.links_opened = 0
        """How many times the line or gateway connection was opened."""

    @property
    def name(self) -> str:
        """The serial device, or `host:port` of the gateway."""
        return self._name

    @property
    def stats(self) -> dict[int, RequestStats]:
        """Request statistics per unit id."""
        return self._stats

    @property
    def discarded_bytes(self) -> int:
        """Bytes skipped so far while looking for responses (noise, stale answers)."""
        return self._codec.discarded

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
        """Send `request` to `unit` (1-247); see `Master.request`."""
        if not 1 <= unit <= 247:
            raise ValueError(f"RTU unit ids are 1-247 (0 is broadcast()), got {unit}")
        timeout_s = timeout_s or self.timeout_s
        for _ in range(self.retries):
            with contextlib.suppress(*RETRIED):
                return await self._attempt(unit, request, timeout_s, delay_s)
        return await self._attempt(unit, request, timeout_s, delay_s)

    async def read_plan(
        self,
        unit: int,
        plan: ReadPlan,
        *,
        max_in_flight: int = 1,
        timeout_s: float | None = None,
        delay_s: float = 0.0,
    ) -> list[FieldValue]:
        """Every field of `plan`, one request at a time (a bus has one request on it)."""
        return await read_plan_in_turn(self, unit, plan, timeout_s=timeout_s, delay_s=delay_s)

    async def broadcast(self, request: Request, *, timeout_s: float | None = None) -> None:
        """Send a write to every unit (unit 0); no answer comes, the turnaround delay follows."""
        timeout_s = timeout_s or self.timeout_s
        deadline = trio.current_time() + timeout_s
        with trio.move_on_at(deadline):
            async with self._bus:
                link = await self._connect(deadline)
                await self._send(link, 0, request, 0.0)
                self._ended_at = trio.current_time()
                self._quiet_until = self._ended_at + self.turnaround_s
                return
        raise ModbusTimeoutError(f"{self.name}: broadcast not sent within {timeout_s:g} s")

    async def aclose(self) -> None:
        """Close the line or gateway connection."""
        if self._link is not None:
            await trio.aclose_forcefully(self._link)
            self._link = None

    async def _attempt(
        self, unit: int, request: Request, timeout_s: float, delay_s: float
    ) -> Response:
        stats = stats_of(self._stats, unit)
        deadline = trio.current_time() + timeout_s + delay_s
        with trio.move_on_at(deadline):
            async with self._bus:
                try:
                    link = await self._connect(deadline)
                    response, started = await self._exchange(link, unit, request, delay_s)
                except ModbusError:
                    stats.record_error()
                    raise
                finally:
                    self._ended_at = trio.current_time()
                    self._quiet_until = self._ended_at + self.gap_s
                checked = check_response(
                    self.name, unit, response, stats, trio.current_time() - started
                )
                self._gate.succeeded()
                return checked
        stats.record_timeout()
        raise ModbusTimeoutError(f"no answer from {self.name}/{unit} within {timeout_s:g} s")

    async def _connect(self, deadline: float) -> trio.abc.Stream:
        if self._link is not None:
            return self._link
        await self._gate.wait(deadline)
        try:
            self._link = await self._open_link()
        except OSError as exc:
            self._gate.failed(trio.current_time(), f"cannot open: {exc}")
            raise ModbusConnectionError(f"{self.name}: cannot open: {exc}") from exc
        self.links_opened += 1
        return self._link

    async def _send(
        self, link: trio.abc.Stream, unit: int, request: Request, delay_s: float
    ) -> None:
        await trio.sleep_until(max(self._quiet_until, self._ended_at + delay_s))
        if self._flush_input is not None:
            self._flush_input(link)
        _transaction_id, frame = self._codec.encode_request(unit, request)
        try:
            check_send()
            await link.send_all(frame)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise await self._lost(f"link lost while sending: {exc}") from exc

    async def _exchange(
        self, link: trio.abc.Stream, unit: int, request: Request, delay_s: float
    ) -> tuple[Response, float]:
        await self._send(link, unit, request, delay_s)
        started = trio.current_time()
        try:
            while True:
                data = await link.receive_some(MAX_RTU_FRAME)
                if not data:
                    raise await self._lost("link closed by the other end")
                self._codec.receive_data(data)
                while (event := self._codec.next_event()) is not None:
                    if isinstance(event, ResponseReceived):
                        return event.response, started
                    if event.transaction_id is not None:
                        raise ModbusBadResponseError(f"{self.name}/{unit}: {event.reason}")
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise await self._lost(f"link lost: {exc}") from exc

    async def _lost(self, reason: str) -> ModbusConnectionError:
        """Close the link after a failure; the next request reopens it."""
        self._gate.lost(trio.current_time(), reason)
        await self.aclose()
        return ModbusConnectionError(f"{self.name}: {reason}")


def _flush_tty_input(link: trio.abc.Stream) -> None:
    assert isinstance(link, trio.lowlevel.FdStream)
    termios.tcflush(link.fileno(), termios.TCIFLUSH)


def serial_rtu_master(
    line: SerialLine,
    *,
    timeout_s: float = 1.0,
    retries: int = 1,
    turnaround_s: float = DEFAULT_TURNAROUND_S,
    backoff: Backoff = DEFAULT_BACKOFF,
) -> RtuMaster:
    """The master of the RTU bus on serial `line`; the tty is opened on the first request."""

    async def open_link() -> trio.abc.Stream:
        return open_serial_line(line)

    return RtuMaster(
        line.device,
        open_link,
        gap_s=RtuTiming.for_line(line).t35_s,
        flush_input=_flush_tty_input,
        timeout_s=timeout_s,
        retries=retries,
        turnaround_s=turnaround_s,
        backoff=backoff,
    )


def tcp_rtu_master(
    host: str,
    port: int,
    *,
    timeout_s: float = 1.0,
    retries: int = 1,
    turnaround_s: float = DEFAULT_TURNAROUND_S,
    backoff: Backoff = DEFAULT_BACKOFF,
) -> RtuMaster:
    """The master of an RTU bus behind a serial-to-Ethernet gateway (RTU frames over TCP).

    The gateway keeps the serial line's timing, so no gap is added here.
    """

    async def open_link() -> trio.abc.Stream:
        return await trio.open_tcp_stream(host, port)

    return RtuMaster(
        f"{host}:{port}",
        open_link,
        gap_s=0.0,
        timeout_s=timeout_s,
        retries=retries,
        turnaround_s=turnaround_s,
        backoff=backoff,
    )


@asynccontextmanager
async def open_rtu_master(line: SerialLine, **options: Any) -> AsyncIterator[RtuMaster]:
    """`serial_rtu_master(line, **options)`, closed on exit."""
    master = serial_rtu_master(line, **options)
    try:
        yield master
    finally:
        await master.aclose()


@asynccontextmanager
async def open_rtu_over_tcp_master(
    host: str, port: int, **options: Any
) -> AsyncIterator[RtuMaster]:
    """`tcp_rtu_master(host, port, **options)`, closed on exit."""
    master = tcp_rtu_master(host, port, **options)
    try:
        yield master
    finally:
        await master.aclose()
