"""A read plan a `TcpMaster` started in a `PlanGroup` (`TcpMaster.start_plan`), for a caller
that reads many devices from one task (`hubgate.modbus.plan_group`): the group drives it in
Rust (the frames, the answers, the device's pause, the round trips' deadlines) and hands
over how it ended; `end` makes that the plan's outcome and ends the connection's turn."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hubgate._core import FrameError, PlanExchange
from hubgate.modbus.codec import FieldValue
from hubgate.modbus.errors import ModbusError
from hubgate.modbus.stats import RequestStats

if TYPE_CHECKING:
    from hubgate.modbus.tcp_master import TcpMaster, _Connection

Outcome = list[FieldValue] | ModbusError | Exception
"""The fields' values, the `ModbusError` that ended the plan, or the error a command's
fencing check raised before a frame went out."""


class PlanInFlight:
    """A read plan in a `PlanGroup` (see the module docstring); `outcome` once it ended."""

    __slots__ = ("_connection", "_delay_s", "_exchange", "_master", "_stats", "_unit", "outcome")

    def __init__(
        self,
        master: TcpMaster,
        connection: _Connection,
        unit: int,
        exchange: PlanExchange,
        stats: RequestStats,
        delay_s: float,
    ) -> None:
        self._master = master
        self._connection = connection
        self._unit = unit
        self._exchange = exchange
        self._stats = stats
        self._delay_s = delay_s
        self.outcome: Outcome | None = None

    @property
    def retries(self) -> int:
        """How often its master retries a failed attempt (`TcpMaster.retries`)."""
        return self._master.retries

    def end(self, value: object, started: float, now: float) -> Outcome:
        """The outcome of the plan, which `PlanGroup` says ended with `value` at `now` (its
        first request sent at `started`): the connection's turn ends, the plan is counted."""
        master, exchange = self._master, self._exchange
        outcome: Outcome
        if isinstance(value, list):
            outcome = value
        elif value is None:  # the round trip in flight is past its deadline (or given up)
            master._abandon(self._unit, exchange, self._connection.codec)
            outcome = master._timeout(self._unit, master.timeout_s)
        elif value == b"":
            outcome = master._lost(self._connection, "connection closed by the device")
        elif isinstance(value, FrameError):
            outcome = master._lost(self._connection, f"bad frame header: {value}")
        elif isinstance(value, OSError):
            outcome = master._lost(self._connection, f"connection lost: {value}")
        elif isinstance(value, Exception):  # the fencing check: nothing more goes out
            master._abandon(self._unit, exchange, self._connection.codec)
            outcome = value
        else:  # a plan's: its values or a failure, never a `Response`
            outcome = master._plan_outcome(self._unit, value)  # type: ignore[assignment]
        master.stray_frames += exchange.strays
        master._end_turn(now)
        waited = now - started
        rounds = exchange.rounds
        if self._delay_s and rounds > 1:
            waited -= (rounds - 1) * self._delay_s  # not the pauses between them
        master._count_plan(self._stats, exchange, outcome, waited, rounds)
        self.outcome = outcome
        return outcome
