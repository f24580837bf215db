"""Read plans that go on past a cycle's read deadline, and count when they end.

    reads = PlanReads(give_up_s=3.0)
    await nursery.start(reads.run)           # where plans in flight go on
    earlier = reads.ended()                   # the plans that ended since the last read
    ended = await reads.read({"meter:m1": (meter, plan)}, deadline)
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
age of a reading whose requests were answered at different times). A name whose plan
is in flight is not read again until it ended. Without `run` (nowhere to go on), a
`read` cuts its plans at its deadline, as `read_plans` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import trio

from hubgate._core import ReadPlan
from hubgate.modbus.master import ModbusDevice
from hubgate.modbus.plan_group import Outcome, read_plans


@dataclass(frozen=True, slots=True)
class Ended:
    """How a plan ended (None: given up, or cut at the deadline) and when it began."""

    outcome: Outcome
    at: float


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
        self, reads: Mapping[str, tuple[ModbusDevice, ReadPlan]], deadline: float
    ) -> dict[str, Ended]:
        """Start every plan of `reads` (by name, none of them in flight) now, wait until
        no plan is in flight or until `deadline`; returns every plan that ended since the
        last `read`, by name."""
        began = trio.current_time()
        names = list(reads)
        if self._nursery is None:
            outcomes = await read_plans(list(reads.values()), deadline)
            for name, outcome in zip(names, outcomes, strict=True):
                self._ended[name] = Ended(outcome, began)
        elif names:
            if not self.in_flight.isdisjoint(names):
                raise ValueError(f"already in flight: {sorted(self.in_flight & set(names))}")
            self.in_flight.update(names)
            self._quiet = trio.Event()
            self._nursery.start_soon(self._go_on, names, list(reads.values()), began)
        if self.in_flight:
            with trio.move_on_at(deadline):
                await self._quiet.wait()
        return self.ended()

    def ended(self) -> dict[str, Ended]:
        """Every plan that ended since the last `read` or `ended`, by name."""
        ended, self._ended = self._ended, {}
        return ended

    async def _go_on(
        self, names: list[str], reads: list[tuple[ModbusDevice, ReadPlan]], began: float
    ) -> None:
        """Read one `read`'s plans to their end, or until `give_up_s` after `began`."""

        going = set(range(len(names)))

        def end(index: int, outcome: Outcome) -> None:
            going.discard(index)
            name = names[index]
            self.in_flight.discard(name)
            self._ended[name] = Ended(outcome, began)
            if not self.in_flight:
                self._quiet.set()

        try:
            await read_plans(reads, began + self.give_up_s, end)
        finally:  # given up (or cancelled): ended without an outcome
            for index in list(going):
                end(index, None)
