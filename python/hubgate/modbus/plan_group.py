"""Many devices' read plans from one task: every first request sent at once, then one
private `epoll` set drained as the answers arrive (`PlanGroup`, in Rust: one call per
wake takes every answer, matches and decodes it and sends the frames it lets out).

    outcomes = await read_plans([(meter, plan), (charger, other_plan)], deadline)

A task per device costs a spawn, a readiness wait (an `epoll_ctl`) and a task switch
per request; here the whole group costs one wait per batch of answers (a brief block
while the answers come quickly, `hubgate.modbus.readiness`, else Trio's). A device
on an open, idle Modbus TCP connection is read in the group (`TcpMaster.start_plan`),
and so is one whose connection has another plan of the group in flight (a charger's
second connector behind the same socket) once that plan ended. A read in the group that
fails in a way a retry may cure (timeout, a frame that does not answer) is tried again in
the group, as often as its master's `retries` allow (as its own `read_plan` would), ahead
of the plans waiting for its connection. Any other (RTU, a connection to open or in
another task's use), and a retry whose connection was lost, is read by its own
`read_plan` in a task, with its retries, under the same deadline. A
device that needs a pause between requests is read in the group too: each of its
requests waits for its time as a round trip waits for its deadline. Each outcome is
the fields' values, the error that ended the read, or None when the deadline came
first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import trio

from hubgate._core import HubgateError, PlanExchange, PlanGroup, ReadPlan
from hubgate.modbus.codec import FieldValue
from hubgate.modbus.errors import RETRIED
from hubgate.modbus.master import ModbusDevice
from hubgate.modbus.plan_flight import end_flight
from hubgate.modbus.readiness import Readable
from hubgate.modbus.tcp_master import TcpMaster

Outcome = list[FieldValue] | Exception | None
"""The fields' values, the error that ended the read, or None (past the deadline)."""

Ended = Callable[[int, Outcome], None]
"""Told each plan's index and outcome as it ends."""

_IDLE: list[tuple[PlanGroup, Readable]] = []
"""Groups no read uses now, each with the wait for its `epoll` set: a connection stays
in a group's set until it is closed, so reading it again in the same group costs no
`epoll_ctl` (one per device read otherwise, a tenth of its CPU)."""


async def read_plans(
    reads: Sequence[tuple[ModbusDevice, ReadPlan]],
    deadline: float,
    ended: Ended | None = None,
) -> list[Outcome]:
    """The outcome of every `(device, plan)`, in order (see the module docstring);
    `ended(index, outcome)` as each plan ends before the deadline."""
    outcomes: list[Outcome] = [None] * len(reads)

    def end(index: int, outcome: Outcome) -> None:
        outcomes[index] = outcome
        if ended is not None:
            ended(index, outcome)

    try:
        group, readable = _IDLE.pop() if _IDLE else _new_group()
    except OSError:  # out of descriptors: every device reads alone (and reports its error)
        group = None
    behind: dict[object, list[int]] = {}
    """A connection with a plan of this group in flight: the indices that wait for it."""
    tries = [0] * len(reads)
    """Retries of each plan in the group so far (its master's `retries` at most)."""

    def flight_end(
        index: int, exchange: PlanExchange, value: object, started: float, now: float
    ) -> Outcome:
        """`end_flight` of `reads[index]`, whose master is a `TcpMaster` (`start`)."""
        device = reads[index][0]
        master = device.master
        assert isinstance(master, TcpMaster)
        return end_flight(master, device.unit, exchange, value, started, now, device.delay_s)

    def start(index: int, now: float) -> bool:
        """Start `reads[index]` in the group (or end it at once); False: read it alone."""
        device, plan = reads[index]
        master = device.master
        if group is None or not isinstance(master, TcpMaster):
            return False
        if master in behind:  # another plan of this group on its connection: after it
            behind[master].append(index)
            return True
        try:
            started = master.start_plan(
                group, index, device.unit, plan, device.max_in_flight, now, device.delay_s
            )
        except HubgateError as exc:  # a plan the codec refuses
            end(index, exc)
            return True
        if started is True:  # in flight
            behind[master] = []
        elif started is None or isinstance(started, RETRIED):
            return False
        else:
            end(index, started)
        return True

    async def read_alone(index: int) -> None:
        device, plan = reads[index]
        try:
            outcome: Outcome = await device.read_plan(plan)
        except Exception as exc:  # one device's failure is its own outcome
            outcome = exc
        end(index, outcome)

    try:
        with trio.move_on_at(deadline):
            async with trio.open_nursery() as nursery:
                now = trio.current_time()
                for index in range(len(reads)):
                    if not start(index, now):
                        nursery.start_soon(read_alone, index)
                if group is None:
                    return outcomes
                while group.live:
                    await readable.by(group.next_deadline)
                    now = trio.current_time()
                    for index, exchange, value, started in group.step(now):
                        master = reads[index][0].master
                        waiting = behind.pop(master, [])
                        if exchange is None:  # its values, counted in the group
                            end(index, value)
                        elif not isinstance(
                            outcome := flight_end(index, exchange, value, started, now), RETRIED
                        ):
                            end(index, outcome)
                        elif tries[index] >= master.retries:  # type: ignore[attr-defined]
                            end(index, outcome)  # as its own `read_plan` would give up
                        else:  # again, ahead of the plans that wait for its connection
                            tries[index] += 1
                            if not start(index, now):  # the connection was lost
                                nursery.start_soon(read_alone, index)
                        for other in waiting:
                            if not start(other, now):  # the connection is another's
                                nursery.start_soon(read_alone, other)
    finally:  # cut short (the deadline): the plans still in flight are given up
        if group is not None:
            now = trio.current_time()
            for index, exchange, started in group.give_up():
                flight_end(index, exchange, None, started, now)
            _IDLE.append((group, readable))
    return outcomes


def _new_group() -> tuple[PlanGroup, Readable]:
    group = PlanGroup()
    return group, Readable(group.fileno())
