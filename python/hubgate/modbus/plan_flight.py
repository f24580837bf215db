"""How a read plan that a `TcpMaster` started in a `PlanGroup` ended (`TcpMaster.start_plan`),
for a caller that reads many devices from one task (`hubgate.modbus.plan_group`): the group
drives it in Rust (the frames, the answers, the device's pause, the round trips' deadlines)
and ends one that ended with its values there (counted, the connection's turn ended);
`end_flight` makes any other end the plan's outcome and ends the connection's turn."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hubgate._core import FrameError, PlanExchange
from hubgate.modbus.codec import FieldValue
from hubgate.modbus.errors import ModbusError

if TYPE_CHECKING:
    from hubgate.modbus.tcp_master import TcpMaster

Outcome = list[FieldValue] | ModbusError | Exception
"""The fields' values, the `ModbusError` that ended the plan, or the error a command's
fencing check raised before a frame went out."""


def end_flight(
    master: TcpMaster,
    unit: int,
    exchange: PlanExchange,
    value: object,
    started: float,
    now: float,
    delay_s: float,
) -> Outcome:
    """The outcome of the plan to `unit` that `PlanGroup` says ended with `value` at `now`
    (its first request sent at `started`, its device's pause `delay_s`): the connection's
    turn ends, the plan is counted."""
    connection = master._connection
    assert connection is not None  # the plan held its turn: the connection stays
    outcome: Outcome
    if isinstance(value, list):
        outcome = value
    elif value is None:  # the round trip in flight is past its deadline (or given up)
        master._abandon(unit, exchange, connection.codec)
        outcome = master._timeout(unit, master.timeout_s)
    elif value == b"":
        outcome = master._lost(connection, "connection closed by the device")
    elif isinstance(value, FrameError):
        outcome = master._lost(connection, f"bad frame header: {value}")
    elif isinstance(value, OSError):
        outcome = master._lost(connection, f"connection lost: {value}")
    elif isinstance(value, Exception):  # the fencing check: nothing more goes out
        master._abandon(unit, exchange, connection.codec)
        outcome = value
    else:  # a plan's: its values or a failure, never a `Response`
        outcome = master._plan_outcome(unit, value)  # type: ignore[assignment]
    master._turn.strays += exchange.strays
    master._end_turn(now)
    waited = now - started
    rounds = exchange.rounds
    if delay_s and rounds > 1:
        waited -= (rounds - 1) * delay_s  # not the pauses between them
    stats = master.stats[unit]  # made by `start_plan`
    master._count_plan(stats, exchange, outcome, waited, rounds)
    return outcome
