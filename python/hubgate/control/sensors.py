"""How the control loop reads its site each cycle: every device by name, read at once and
cancelled at one deadline (`gather_by_deadline`); chargers behind a session (OCPP) answer
from their latest report without a task; Modbus devices read their control fields every
cycle and the rest every few (`CycleSensed`). A Modbus device's read plan still in flight
at the deadline goes on (`hubgate.modbus.plan_reads`, while `SiteSensors.run` runs), as
does its first read (which compiles its plan): the cycle counts the device `IN_FLIGHT`
(neither answered nor missed), and the reading counts in the cycle after it ended, with
the time its read began. Devices are known only through the protocols of
`hubgate.devices.model`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import cast

import trio

from hubgate._core import HubgateError
from hubgate.control.cycle import IN_FLIGHT, TIMED_OUT, Failed, gather_by_deadline
from hubgate.control.site_model import SiteModel
from hubgate.devices.model import (
    Battery,
    Charger,
    ChargingNeeds,
    CycleRead,
    CycleSensed,
    Device,
    FixedFailsafe,
    LimitCheck,
    PlannedRead,
    ReportsChargingNeeds,
    SessionCharger,
)
from hubgate.modbus.codec import FieldValue
from hubgate.modbus.plan_reads import Ended, PlanReads
from hubgate.profiles.model import Quantity

Read = Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class SiteDevices:
    """What the loop talks to: a charger per connector, meters by id, the grid-operator box,
    the stationary battery and PV inverters by id."""

    chargers: Mapping[tuple[str, int], Charger]
    meters: Mapping[str, Device] = field(default_factory=dict)
    grid_operator: Device | None = None
    battery: Battery | None = None
    pv: Mapping[str, Device] = field(default_factory=dict)
    feed_in_rule: Mapping[Quantity, float] = field(default_factory=dict)
    """The grid operator's box's contacts and the feed-in cap (%) each stands for."""
    grid_operator_heartbeat_s: float | None = None
    """How long the box's heartbeat counter may stand still (None: it has none watched)."""

    def fixed_failsafes(self, failsafe_current_a: float) -> dict[tuple[str, int], float]:
        """The connectors whose charger falls back to a current of its own whatever it is
        asked (`FixedFailsafe`), and that current."""
        return {
            key: fixed
            for key, charger in self.chargers.items()
            if isinstance(charger, FixedFailsafe)
            and (fixed := charger.fixed_failsafe_a(failsafe_current_a)) is not None
        }


class SiteSensors:
    """The site's devices by name (`charger-id#n`, `meter:id`, `grid-operator`, `pv:id`,
    `battery:id`) and how each is read."""

    def __init__(
        self, devices: SiteDevices, model: SiteModel, *, full_read_every: int, give_up_s: float
    ) -> None:
        """`give_up_s`: how long a read plan may go on from its start (`PlanReads`)."""
        chargers = devices.chargers
        missing = [c.name for c in model.connectors if c.key not in chargers]
        if missing:
            raise ValueError(f"no device for connectors {', '.join(missing)}")
        self.chargers: dict[str, Charger] = {
            info.name: chargers[info.key] for info in model.connectors
        }
        """Each connector's charger, by connector name."""
        self.reported = {
            name: c for name, c in self.chargers.items() if isinstance(c, SessionCharger)
        }
        """The chargers that report by session (read from memory), by connector name."""
        self._needs = {
            name: c for name, c in self.chargers.items() if isinstance(c, ReportsChargingNeeds)
        }
        by_name: dict[str, Device] = dict(self.chargers)
        by_name |= {f"meter:{meter_id}": meter for meter_id, meter in devices.meters.items()}
        self._cycle_reads: dict[str, CycleRead] = {
            name: device.cycle_reader(full_read_every)
            for name, device in by_name.items()
            if name not in self.reported and isinstance(device, CycleSensed)
        }
        self._reads: dict[str, Read] = {
            name: device.read
            for name, device in by_name.items()
            if name not in self.reported and name not in self._cycle_reads
        }
        if devices.grid_operator is not None:
            self._reads["grid-operator"] = devices.grid_operator.read
            by_name["grid-operator"] = devices.grid_operator
        by_name |= {f"pv:{pv_id}": pv for pv_id, pv in devices.pv.items()}
        if devices.battery is not None:
            by_name[f"battery:{devices.battery.id}"] = devices.battery
        self.by_name = by_name
        """Every device, by name."""
        self._plans = PlanReads(give_up_s=give_up_s)
        self._in_flight: dict[str, PlannedRead | None] = {}
        """The reads that go on past their cycle, by name: a plan, or None for a first
        read."""

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Where read plans in flight at a cycle's deadline go on, until cancelled (without
        it, they are cut at the deadline)."""
        await self._plans.run(task_status=task_status)

    async def read(self, more: Mapping[str, Read], deadline: float) -> dict[str, object]:
        """This cycle's readings (or failures) by name: the chargers' and meters' reads and
        `more` (the battery's and PV's), each cancelled at `deadline`. Modbus devices whose
        read is a compiled plan are read together (`PlanReads`), a first read alone; one
        whose read is still in flight is `IN_FLIGHT` until it ended."""
        known: dict[str, object] = {}
        for name, charger in self.reported.items():  # from memory: no task needed
            try:
                known[name] = charger.latest()
            except HubgateError as exc:
                known[name] = Failed(exc)
        reads = self._reads | dict(more)
        planned: dict[str, PlannedRead] = {}
        first: dict[str, Read] = {}
        in_flight = self._in_flight
        for name, earlier in self._plans.ended().items():  # since the last cycle
            known[name] = _reading(in_flight.pop(name), earlier)
        for name, cycle_read in self._cycle_reads.items():
            if name in in_flight:
                continue  # its read goes on
            plan = cycle_read.planned()
            if plan is None:
                first[name] = cycle_read.read  # compiles its plan (may discover registers)
            else:
                planned[name] = plan
        if not planned and not first and not in_flight:
            return known | await gather_by_deadline(reads, deadline)
        gathered: dict[str, object] = {}

        async def read_the_rest() -> None:
            gathered.update(await gather_by_deadline(reads, deadline))

        in_flight |= planned
        in_flight |= dict.fromkeys(first)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_the_rest)
            ended = await self._plans.read(
                {name: (p.link, p.plan) for name, p in planned.items()}, deadline, first
            )
        for name, outcome in ended.items():  # newer than one that ended before the cycle
            known[name] = _reading(in_flight.pop(name), outcome)
        for name in in_flight:
            known.setdefault(name, IN_FLIGHT)  # not answered yet: its read goes on
        return known | gathered

    def limit_checks(self) -> dict[str, LimitCheck]:
        """Whether each charger follows its limits, by connector name."""
        return {name: charger.limit_check for name, charger in self.chargers.items()}

    def charging_needs(self) -> dict[str, ChargingNeeds | None]:
        """What the EVs reported they need, by connector name."""
        return {name: charger.charging_needs() for name, charger in self._needs.items()}

    def id_tokens(self) -> dict[str, str | None]:
        """The id token of each connector's session, by connector name."""
        return {name: charger.id_token() for name, charger in self._needs.items()}


def _reading(plan: PlannedRead | None, ended: Ended) -> object:
    """A planned read's reading (read at its start), a first read's (`plan` None), or its
    failure as `gather_by_deadline` gives it."""
    outcome = ended.outcome
    if outcome is None:
        return TIMED_OUT
    if isinstance(outcome, Exception):
        return Failed(outcome)
    if plan is None:
        return outcome
    try:
        return plan.finish(cast(list[FieldValue], outcome), ended.at)
    except Exception as exc:  # as `gather_by_deadline`: one device's failure is its own
        return Failed(exc)
