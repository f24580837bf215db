"""Many devices' read plans from one task: every first request sent at once, then one
private `epoll` set drained as the answers arrive.

    outcomes = await read_plans([(meter, plan), (charger, other_plan)], deadline)

A task per device costs a spawn, a readiness wait (an `epoll_ctl`) and a task switch
per request; here the whole group costs one wait per batch of answers (a brief block
while the answers come quickly, `hubgate.modbus.readiness`, else Trio's). A device
on an open, idle Modbus TCP connection is read in the group (`TcpMaster.start_plan`);
any other (RTU, a connection to open or in use), and one whose read in the group fails
in a way a retry may cure (timeout, lost link, a frame that does not answer), is read
by its own `read_plan` in a task, with its retries, under the same deadline. A
device that needs a pause between requests is read in the group too: each of its
requests waits for its time as a round trip waits for its deadline. Each outcome is
the fields' values, the error that ended the read, or None when the deadline came
first.
"""

from __future__ import annotations

import heapq
import select
from collections.abc import Callable, Sequence

import trio

from hubgate._core import HubgateError, ReadPlan
from hubgate.modbus.codec import FieldValue
from hubgate.modbus.errors import RETRIED
from hubgate.modbus.master import ModbusDevice
from hubgate.modbus.plan_flight import PlanInFlight
from hubgate.modbus.readiness import Readable
from hubgate.modbus.tcp_master import TcpMaster

Outcome = list[FieldValue] | Exception | None
"""The fields' values, the error that ended the read, or None (past the deadline)."""

_ONE_WAKE = select.EPOLLIN | select.EPOLLONESHOT
"""A socket reports once, then not again until re-armed: an ended plan's is never woken
for (a late answer), and needs no `epoll_ctl` to leave the set."""


Ended = Callable[[int, Outcome], None]
"""Told each plan's index and outcome as it ends."""


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

    flights: dict[int, tuple[int, PlanInFlight]] = {}
    alone: list[int] = []
    now = trio.current_time()
    try:
        poll: select.epoll | None = select.epoll()
    except OSError:  # out of descriptors: every device reads alone (and reports its error)
        poll = None
    try:
        for index, (device, plan) in enumerate(reads):
            master = device.master
            flight = None
            if poll is not None and isinstance(master, TcpMaster):
                try:
                    flight = master.start_plan(
                        device.unit, plan, device.max_in_flight, now, device.delay_s
                    )
                except HubgateError as exc:  # a plan the codec refuses
                    end(index, exc)
                    continue
            if flight is None or isinstance(flight.outcome, RETRIED):
                alone.append(index)
            elif flight.outcome is not None:
                end(index, flight.outcome)
            else:
                flights[flight.fd] = (index, flight)

        async def read_alone(index: int) -> None:
            device, plan = reads[index]
            try:
                outcome: Outcome = await device.read_plan(plan)
            except Exception as exc:  # one device's failure is its own outcome
                outcome = exc
            end(index, outcome)

        with trio.move_on_at(deadline):
            async with trio.open_nursery() as nursery:
                for index in alone:
                    nursery.start_soon(read_alone, index)
                if poll is not None:
                    for index in await _drain(poll, flights, end):
                        nursery.start_soon(read_alone, index)
    finally:  # cut short (the deadline): the plans still in flight are given up
        now = trio.current_time()
        for _, flight in flights.values():
            if flight.outcome is None:
                flight.expire(now)
        if poll is not None:
            poll.close()
    return outcomes


async def _drain(
    poll: select.epoll, flights: dict[int, tuple[int, PlanInFlight]], end: Ended
) -> list[int]:
    """Feed every plan in flight until each ended (they leave `flights`); returns those to
    retry alone."""
    retry: list[int] = []
    deadlines = [(flight.deadline, fd) for fd, (_, flight) in flights.items()]
    heapq.heapify(deadlines)
    for fd in flights:
        poll.register(fd, _ONE_WAKE)
    readable = Readable(poll.fileno())
    while flights:
        await readable.by(deadlines[0][0])
        now = trio.current_time()
        ended: list[int] = []
        for fd, _ in poll.poll(0):
            if fd not in flights:  # a late answer to a plan that ended at its deadline
                continue
            flight = flights[fd][1]
            before = flight.deadline
            if flight.advance(now):
                ended.append(fd)  # and its socket stays out of the set (one shot)
                continue
            poll.modify(fd, _ONE_WAKE)
            if flight.deadline != before:  # the next round trip, or a pause
                heapq.heappush(deadlines, (flight.deadline, fd))
        # Each flight's entry at its current deadline is live; the others are stale.
        while deadlines and (deadlines[0][0] <= now or deadlines[0][1] not in flights):
            at, fd = heapq.heappop(deadlines)
            if fd not in flights or fd in ended or flights[fd][1].deadline != at:
                continue
            flight = flights[fd][1]
            if flight.due(now):
                ended.append(fd)
            else:
                heapq.heappush(deadlines, (flight.deadline, fd))
        for fd in ended:
            index, flight = flights.pop(fd)
            if isinstance(flight.outcome, RETRIED):
                retry.append(index)
            else:
                end(index, flight.outcome)
    return retry
