"""A read plan a `TcpMaster` started (`TcpMaster.start_plan`) for a caller that reads many
devices from one task (`hubgate.modbus.plan_group`): the caller feeds it when its socket is
readable and at its deadline; it sends the plan's next requests (after the device's pause)
and ends the connection's turn with the plan's outcome."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from hubgate._core import FrameError, PlanExchange, Response, ResponseRejected
from hubgate.fencing import check_send
from hubgate.modbus.codec import FieldValue
from hubgate.modbus.errors import ModbusError
from hubgate.modbus.stats import RequestStats

if TYPE_CHECKING:
    from hubgate.modbus.tcp_master import TcpMaster, _Connection


class PlanInFlight:
    """A read plan `TcpMaster.start_plan` started: its caller feeds it when the socket is
    readable (`receive`) and calls `due` at its `deadline` (a request held for the
    device's pause is sent, or the round trip in flight timed out); `outcome` is set once
    it ended (the fields' values or the `ModbusError`), the connection's turn then ends."""

    __slots__ = (
        "_connection",
        "_delay_s",
        "_exchange",
        "_held",
        "_master",
        "_rounds",
        "_socket",
        "_stats",
        "_unit",
        "deadline",
        "fd",
        "outcome",
        "started",
    )

    def __init__(
        self,
        master: TcpMaster,
        connection: _Connection,
        sock: socket.socket,
        unit: int,
        exchange: PlanExchange,
        stats: RequestStats,
        now: float,
        delay_s: float = 0.0,
    ) -> None:
        self._master = master
        self._connection = connection
        self._socket = sock
        self.fd = sock.fileno()
        self._unit = unit
        self._exchange = exchange
        self._stats = stats
        self._delay_s = delay_s
        self._held: bytes | None = None
        """Requests waiting for the device's pause to end (at `deadline`)."""
        self.started = now
        self.deadline = now + master.timeout_s
        """When the round trip in flight times out, or the held requests are sent."""
        self._rounds = 0
        self.outcome: list[FieldValue] | ModbusError | None = None
        step = exchange.start(connection.codec)
        if isinstance(step, bytes):
            if delay_s:
                self._send_after_pause(step, now)
            else:
                self._send(step, now)
        else:
            self._end(step, now)

    def receive(self, now: float) -> bool:
        """Take what the socket holds (at `now`); True once the plan ended."""
        try:
            data = self._socket.recv(65536)
        except BlockingIOError:
            return False
        except OSError as exc:
            return self._lose(f"connection lost: {exc}", now)
        if not data:
            return self._lose("connection closed by the device", now)
        try:
            step = self._exchange.receive(self._connection.codec, data)
        except FrameError as exc:
            return self._lose(f"bad frame header: {exc}", now)
        if step is None:
            return False
        if isinstance(step, bytes):
            if self._delay_s:  # the answer that just came ended an exchange
                self._master._quiet_since = now
                self._send_after_pause(step, now)
            else:
                self._send(step, now)
                self.deadline = now + self._master.timeout_s
            return self.outcome is not None
        self._end(step, now)
        return True

    def due(self, now: float) -> bool:
        """At `deadline`: send the requests held for the pause, else time out (`expire`);
        True once the plan ended."""
        held = self._held
        if held is None:
            self.expire(now)
            return True
        self._held = None
        if not self._rounds:
            self.started = now
        self._send(held, now)
        self.deadline = now + self._master.timeout_s
        return self.outcome is not None

    def _send_after_pause(self, frames: bytes, now: float) -> None:
        """Send `frames` once the connection has been quiet for the device's pause."""
        ready = self._master._quiet_since + self._delay_s
        if now < ready:
            self._held = frames
            self.deadline = ready
        else:
            self._send(frames, now)
            self.deadline = now + self._master.timeout_s

    def expire(self, now: float) -> None:
        """The round trip in flight is past its deadline: a timeout."""
        master = self._master
        master._abandon(self._unit, self._exchange, self._connection.codec)
        self._finish(master._timeout(self._unit, master.timeout_s), now)

    def _send(self, frames: bytes, now: float) -> None:
        try:
            check_send()
            sent = self._socket.send(frames)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self._lose(f"connection lost: {exc}", now)
            return
        self._rounds += 1
        if sent < len(frames):  # a few bytes into an empty send buffer: never on a live link
            self._lose("send buffer full", now)

    def _lose(self, reason: str, now: float) -> bool:
        self._finish(self._master._lost(self._connection, reason), now)
        return True

    def _end(self, step: list[FieldValue] | Response | ResponseRejected, now: float) -> None:
        self._finish(self._master._plan_outcome(self._unit, step), now)

    def _finish(self, outcome: list[FieldValue] | ModbusError, now: float) -> None:
        master, exchange = self._master, self._exchange
        master.stray_frames += exchange.strays
        master._end_turn(now)
        waited = now - self.started
        if self._delay_s and self._rounds > 1:
            waited -= (self._rounds - 1) * self._delay_s  # not the pauses between them
        master._count_plan(self._stats, exchange, outcome, waited, self._rounds)
        self.outcome = outcome
