"""Read plans that go on past a cycle's read deadline, and count when they end.

    reads = PlanReads(give_up_s=3.0)
    await nursery.start(reads.run)           # where plans in flight go on
    earlier = reads.ended()                   # the plans that ended since the last read
    ended = await reads.read({"meter:m1": (meter, plan)}, deadline, alone={"pv:p1": pv.read})
    # every plan that ended since, this cycle's or an earlier one's, with the time it
    # began; `reads.in_flight`: the names still being read

A device whose plan takes more than one request answers each in its own time (an RTU
line at 9600 baud, a charger that answers slowly under load): cut at every cycle's
deadline and started again from scratch, such a plan would never end, and the device
would count as silent although it answers every request. Here the plans of a `read`
run in a task of `run` (`read_plans`, the group read), which `read` waits for until its
deadline; a plan still in flight then goes on until it ends, bounded by its own round
trips' timeouts and retries and by `give_up_s` from its start (then it ended without
an outcome, as one cut at a deadline), and a later `read` (or `ended`) hands it over. A plan is all
or nothing: its values are handed over only once every request of it was answered, with
the time it began (`Ended.at`: none of its values was read before; the conservative
age of a reading whose requests were answered at different times). A read that is not
a plan (`alone`: a device's first read, which compiles its plan and may discover where
its registers are) goes on the same way, in a task of its own. A name whose read is in
flight is not read again until it ended. Without `run` (nowhere to go on), a `read`
cuts its reads at its deadline, as `read_plans` does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import trio

from hubgate._core import ReadPlan
from hubgate.modbus.master import ModbusDevice
from hubgate.modbus.plan_group import Outcome, read_plans


@dataclass(frozen=True, slots=True)
class Ended:
    """How a read ended and when it began: a plan's `Outcome` (None: given up, or cut at
    the deadline), or what a read alone returned or raised (None likewise)."""

    outcome: Outcome | object
    at: float


Alone = Callable[[], Awaitable[object]]
"""A read that is not a plan (`PlanReads.read`'s `alone`)."""


class PlanReads:
    """Read plans that go on past a deadline (see the module docstring)."""

    def __init__(self, *, give_up_s: float) -> None:
        if not give_up_s > 0:
            raise ValueError(f"give_up_s must be above 0, got {give_up_s}")
        self.give_up_s = give_up_s
        self.in_flight: set[str] = set()
        """The names whose plan goes on."""
        self._ended: dict[str, Ended] = {}
        self._nursery: trio.Nursery | None = None
        self._quiet = trio.Event()
        """Set once no plan is in flight."""

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Where plans in flight go on, until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                task_status.started()
                await trio.sleep_forever()
            finally:
                self._nursery = None

    async def read(
        self,
        reads: Mapping[str, tuple[ModbusDevice, ReadPlan]],
        deadline: float,
        alone: Mapping[str, Alone] | None = None,
    ) -> dict[str, Ended]:
        """Start every plan of `reads` and every read of `alone` (by name, none of them in
        flight) now, wait until no read is in flight or until `deadline`; returns every
        read that ended since the last `read`, by name."""
        began = trio.current_time()
        alone = alone or {}
        names = [*reads, *alone]
        if not self.in_flight.isdisjoint(names):
            raise ValueError(f"already in flight: {sorted(self.in_flight.intersection(names))}")
        if names:
            self.in_flight.update(names)
            self._quiet = trio.Event()
        if self._nursery is None:  # nowhere to go on: cut at the deadline
            async with trio.open_nursery() as nursery:
                self._start(nursery, reads, alone, began, deadline)
        else:
            self._start(self._nursery, reads, alone, began, began + self.give_up_s)
            if self.in_flight:
                with trio.move_on_at(deadline):
                    await self._quiet.wait()
        return self.ended()

    def ended(self) -> dict[str, Ended]:
        """Every read that ended since the last `read` or `ended`, by name."""
        ended, self._ended = self._ended, {}
        return ended

    def _start(
        self,
        nursery: trio.Nursery,
        reads: Mapping[str, tuple[ModbusDevice, ReadPlan]],
        alone: Mapping[str, Alone],
        began: float,
        until: float,
    ) -> None:
        if reads:
            nursery.start_soon(self._go_on, list(reads), list(reads.values()), began, until)
        for name, read in alone.items():
            nursery.start_soon(self._go_on_alone, name, read, began, until)

    def _end(self, name: str, ended: Ended) -> None:
        self.in_flight.discard(name)
        self._ended[name] = ended
        if not self.in_flight:
            self._quiet.set()

    async def _go_on(
        self,
        names: list[str],
        reads: list[tuple[ModbusDevice, ReadPlan]],
        began: float,
        until: float,
    ) -> None:
        """Read one `read`'s plans to their end, or until `until`."""
        going = set(range(len(names)))

        def end(index: int, outcome: Outcome) -> None:
            going.discard(index)
            self._end(names[index], Ended(outcome, began))

        try:
            await read_plans(reads, until, end)
        finally:  # given up (or cancelled): ended without an outcome
            for index in list(going):
                end(index, None)

    async def _go_on_alone(self, name: str, read: Alone, began: float, until: float) -> None:
        """One read alone to its end, or until `until`."""
        outcome: object = None
        try:
            with trio.move_on_at(until):
                try:
                    outcome = await read()
                except Exception as exc:  # one device's failure is its own outcome
                    outcome = exc
        finally:  # given up (or cancelled): ended without an outcome
            self._end(name, Ended(outcome, began))
