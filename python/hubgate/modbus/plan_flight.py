"""A read plan a `TcpMaster` started (`TcpMaster.start_plan`) for a caller that reads many
devices from one task (`hubgate.modbus.plan_group`): the caller feeds it when its socket is
readable and at its deadline; it sends the plan's next requests (after the device's pause)
and ends the connection's turn with the plan's outcome."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hubgate._core import FrameError, PlanExchange
from hubgate.fencing import SEND_GUARD, check_send
from hubgate.modbus.codec import FieldValue
from hubgate.modbus.errors import ModbusError
from hubgate.modbus.stats import RequestStats

if TYPE_CHECKING:
    from hubgate.modbus.tcp_master import TcpMaster, _Connection


class PlanInFlight:
    """A read plan `TcpMaster.start_plan` started: its caller feeds it when the socket is
    readable (`advance`) and calls `due` at its `deadline` (requests held for the
    device's pause are sent, or the round trip in flight timed out); `outcome` is set once
    it ended (the fields' values or the `ModbusError`), the connection's turn then ends.
    Each step is one `PlanExchange.run_on` call that does not wait: the frames due sent,
    what the socket holds taken, and the frames the answers let out sent."""

    __slots__ = (
        "_chain",
        "_connection",
        "_delay_s",
        "_due",
        "_exchange",
        "_guarded",
        "_held",
        "_master",
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
        fd: int,
        unit: int,
        exchange: PlanExchange,
        stats: RequestStats,
        now: float,
        delay_s: float = 0.0,
    ) -> None:
        self._master = master
        self._connection = connection
        self.fd = fd
        self._unit = unit
        self._exchange = exchange
        self._stats = stats
        self._delay_s = delay_s
        self._guarded = SEND_GUARD.get() is not None
        """A command's frames: each checked (`check_send`) before they go."""
        self._chain = not (delay_s or self._guarded)
        """Frames an answer lets out go in the same call (no pause, nothing to check)."""
        self._due = True
        """Frames are due at the next step (the plan's first, or ones held back)."""
        self._held = False
        """The frames due wait for the device's pause to end (at `deadline`)."""
        self.started = now
        self.deadline = now + master.timeout_s
        """When the round trip in flight times out, or the held requests are sent."""
        self.outcome: list[FieldValue] | ModbusError | None = None
        if delay_s:
            self._after_pause(now)
        else:
            self.advance(now)

    def due(self, now: float) -> bool:
        """At `deadline`: send the requests held for the pause, else time out (`expire`);
        True once the plan ended."""
        if not self._held:
            self.expire(now)
            return True
        self._held = False
        if not self._exchange.rounds:
            self.started = now
        return self.advance(now)

    def _after_pause(self, now: float) -> None:
        """Send the frames due once the connection has been quiet for the device's pause."""
        ready = self._master._quiet_since + self._delay_s
        if now < ready:
            self._held = True
            self.deadline = ready
        else:
            self.advance(now)

    def advance(self, now: float) -> bool:
        """Send the frames due and take what the socket holds (at `now`; frames held for
        the pause stay held): one `run_on` call without a wait, then what its step means.
        True once the plan ended."""
        exchange, hold = self._exchange, self._held
        sent = exchange.rounds
        try:
            while True:
                if self._due and self._guarded and not hold:
                    check_send()
                step = exchange.run_on(self._connection.codec, self.fd, 0.0, 0.0, self._chain, hold)
                if not hold:
                    self._due = step is True
                if step is not True or self._delay_s:
                    break
        except FrameError as exc:
            return self._lose(f"bad frame header: {exc}", now)
        except OSError as exc:
            return self._lose(f"connection lost: {exc}", now)
        if exchange.rounds > sent:
            self.deadline = now + self._master.timeout_s
        if step is None:
            return False
        if isinstance(step, list):
            self._finish(step, now)
            return True
        if step is True:  # the answer that just came ended an exchange: the pause begins
            self._master._quiet_since = now
            self._after_pause(now)
            return self.outcome is not None
        if step == b"":
            return self._lose("connection closed by the device", now)
        self._finish(self._master._plan_outcome(self._unit, step), now)
        return True

    def expire(self, now: float) -> None:
        """The round trip in flight is past its deadline: a timeout."""
        master = self._master
        master._abandon(self._unit, self._exchange, self._connection.codec)
        self._finish(master._timeout(self._unit, master.timeout_s), now)

    def _lose(self, reason: str, now: float) -> bool:
        self._finish(self._master._lost(self._connection, reason), now)
        return True

    def _finish(self, outcome: list[FieldValue] | ModbusError, now: float) -> None:
        master, exchange = self._master, self._exchange
        master.stray_frames += exchange.strays
        master._end_turn(now)
        waited = now - self.started
        rounds = exchange.rounds
        if self._delay_s and rounds > 1:
            waited -= (rounds - 1) * self._delay_s  # not the pauses between them
        master._count_plan(self._stats, exchange, outcome, waited, rounds)
        self.outcome = outcome
