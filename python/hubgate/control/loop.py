"""The control loop: every cycle, sense the site, plan, command every charger, publish.

One cycle (`ControlLoop.step`) is the Trio shell around the sans-IO `CyclePlanner`
(`hubgate.control.plan`, where the cycle's rules are written down):

1. read every charger, meter, the grid-operator box, the battery and PV at once, each
   cancelled at the same deadline (`gather_by_deadline`); chargers behind a session
   (OCPP) answer from their latest report at once (`hubgate.control.sensors`);
2. hand the readings and the time to the planner, which absorbs them, builds the
   allocation input and allocates;
3. send the setpoints it plans and the battery's command concurrently (a charger that
   came back has its own failsafe settings configured and verified first; a charger that
   would send nothing answers at once: `hubgate.control.dispatch`), and hand back what
   came of them;
4. append a decision record, publish a `SiteState` (`hubgate.control.snapshot`) and
   report the cycle time.

The loop knows devices only through the protocols of `hubgate.devices.model`.
It commands only under the epoch its `Authority` grants (`hubgate.control.authority`):
a standby gateway senses and plans every cycle (its meters trusted, its allocator's
memory warm) and sends nothing; every command, heartbeat and battery command is
checked against the epoch of its cycle just before it goes out; a new epoch makes
the next cycle verify every charger's failsafe and send every setpoint.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import trio

from hubgate.config.model import SiteConfig
from hubgate.control.allocation import AllocationSettings, CycleInputs, CycleResult
from hubgate.control.authority import SOLE, Authority, Promotion, fenced
from hubgate.control.commands import SiteCommands
from hubgate.control.cycle import CycleStats, LoopTiming, gather_by_deadline, run_cycles
from hubgate.control.decisions import DecisionLog
from hubgate.control.demand import DemandStore
from hubgate.control.dispatch import Dispatch, setter
from hubgate.control.heartbeats import feed_watchdogs
from hubgate.control.limit_events import limit_event
from hubgate.control.limits import AuditEntry, Limit, LimitBook
from hubgate.control.plan import CyclePlanner
from hubgate.control.sensors import SiteDevices, SiteSensors
from hubgate.control.snapshot import Snapshot
from hubgate.control.succession import bequeath, succeed
from hubgate.devices.model import (
    AppliedLimit,
    SessionCharger,
)
from hubgate.records.events import EventLog
from hubgate.records.sessions import SessionRecorder
from hubgate.state import EventCategory, EventLevel, StateHub

log = logging.getLogger(__name__)


class ControlLoop:
    """Senses, allocates and commands a site every `control.cycle_s` seconds."""

    def __init__(
        self,
        site: SiteConfig,
        devices: SiteDevices,
        *,
        limits: LimitBook,
        decisions: DecisionLog,
        hub: StateHub,
        cycle_time: Callable[[float], None] | None = None,
        allocation: AllocationSettings | None = None,
        timing: LoopTiming | None = None,
        clock: Callable[[], float] = trio.current_time,
        events: EventLog | None = None,
        authority: Authority = SOLE,
        wall_clock: Callable[[], float] = time.time,
        keep_demand: bool = True,
        record_sessions: bool = True,
    ) -> None:
        """`cycle_time`: called with each cycle's duration (s), e.g. a metrics histogram;
        `events`: the operator's event log (default: one in memory); `authority`: who may
        command (with `[cluster]`, the leader lease); `wall_clock`: epoch seconds, for
        departures and clock-aligned slots (its offset to `clock` is taken at the first
        cycle); `keep_demand`: keep the demand state in `[demand].state_path`;
        `record_sessions`: keep the charging-session records (the simulator does neither)."""
        self.site = site
        self.authority = authority
        self.epoch: int | None = None
        """The epoch the last cycle commanded under, None while standby."""
        self.devices = devices
        self.limits = limits
        self.decisions = decisions
        self.hub = hub
        self.cycle_time = cycle_time
        self.timing = timing or LoopTiming()
        self.clock = clock
        self.wall_clock = wall_clock
        self.stats = CycleStats()
        self.latency_s: float | None = None
        """The last cycle's time from the start of sensing to the last command sent (s)."""
        self.period_s = site.control.cycle_s
        self.events = events or EventLog(clock=clock)
        limits.listeners.append(self._limit_changed)
        chargers = devices.chargers
        self._demand_store = (
            DemandStore(Path(site.demand.state_path))
            if site.demand is not None and keep_demand
            else None
        )
        self.planner = CyclePlanner(
            site,
            limits,
            meters=devices.meters.keys(),
            grid_operator_box=devices.grid_operator is not None,
            grid_operator_heartbeat_s=devices.grid_operator_heartbeat_s,
            fixed_failsafe=devices.fixed_failsafes(site.control.failsafe_current_a),
            battery=devices.battery,
            pv=devices.pv,
            feed_in_rule=devices.feed_in_rule,
            paced=[key for key, charger in chargers.items() if isinstance(charger, SessionCharger)],
            allocation=allocation,
            timing=self.timing,
            events=self.events,
            demand=self._demand_store.load() if self._demand_store is not None else None,
        )
        self.model = self.planner.model
        self.allocator = self.planner.allocator
        self.energy = self.planner.energy
        self.sensors = SiteSensors(
            devices,
            self.model,
            full_read_every=self.timing.full_read_every,
            give_up_s=self.timing.unreachable_after_cycles * self.period_s,
        )
        self.sessions = SessionRecorder(self.events.store, time.time())
        """The charging sessions (`hubgate.records.sessions`), in the event log's file."""
        self.snapshot = Snapshot(
            self.planner,
            limits=limits,
            decisions=decisions,
            hub=hub,
            devices=self.sensors.by_name,
            events=self.events,
            sessions=self.sessions if record_sessions else None,
        )
        self.dispatch = Dispatch(site, self.planner, self.sensors.chargers, authority)
        self.commands = SiteCommands(self.planner, chargers, self.events)
        """The operator commands (`hubgate.control.commands.Commands`)."""
        self.cycle_ready = trio.Event()
        self._beat_index = [self.allocator.connector_index(key) for key in devices.chargers]

    def _limit_changed(self, entry: AuditEntry, previous: Limit | None) -> None:
        event = limit_event(entry, previous)
        if event is not None:
            self.events.emit(event.level, event.subject, event.message, category=event.category)

    @property
    def last_result(self) -> CycleResult | None:
        """The last cycle's allocation."""
        return self.planner.last_result

    @property
    def last_inputs(self) -> CycleInputs | None:
        """The last cycle's allocation input."""
        return self.planner.last_inputs

    # -- running -----------------------------------------------------------------------------

    async def run(
        self, *, task_status: trio.TaskStatus[CycleStats] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Cycle until cancelled, with every charger's heartbeat on its own period
        (`hubgate.control.heartbeats`)."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self.sensors.run)  # where read plans in flight go on
            await nursery.start(self.dispatch.run)  # where failsafe configurations go on
            chargers = [(f"{k[0]}#{k[1]}", c) for k, c in self.devices.chargers.items()]
            nursery.start_soon(feed_watchdogs, chargers, self._beat_epoch, self.authority)
            await nursery.start(self._cycles)
            task_status.started(self.stats)

    async def _cycles(self, *, task_status: trio.TaskStatus[CycleStats]) -> None:
        authority = self.authority  # a new leader's first cycle starts as it takes the lead
        early = authority.promoted if isinstance(authority, Promotion) else None
        await run_cycles(
            self.period_s, self.step, stats=self.stats, early=early, task_status=task_status
        )

    def _beat_epoch(self, i: int) -> int | None:
        """The epoch to send the heartbeat of charger `i` (of `devices.chargers`) under;
        None while standby or when it is not to be fed (`Verification.heartbeat_due`)."""
        epoch = self.epoch
        due = self.planner.verification.heartbeat_due(self._beat_index[i], self.clock())
        return epoch if due else None

    async def safe_stop(self, timeout_s: float = 5.0) -> dict[str, bool]:
        """Command every reachable charger to its failsafe current and every capped
        PV inverter to its fallback cap (on shutdown: what their leases would come to, now,
        so the EVs' drop is not fed into the grid meanwhile); nothing without the authority
        to command. Whether each charger took it, by name."""
        epoch = self.authority.epoch()
        if epoch is None:
            return {}
        current = self.planner.failsafe_a
        ops = {
            info.name: setter(
                self.devices.chargers[info.key], current[i], 1 if info.one_phase else 3
            )
            for i, info in enumerate(self.model.connectors)
        }
        pv = self.energy.fallback_ops()
        sends = {name: fenced(self.authority, epoch, op) for name, op in (ops | pv).items()}
        results = await gather_by_deadline(sends, trio.current_time() + timeout_s)
        return {name: isinstance(results.get(name), AppliedLimit) for name in ops}

    def bequeath_last(self) -> None:
        """As leader, right before a hand-over: what a successor may count on, from the
        chargers' latest limit checks (one may have come since the last cycle began: a
        charger seen to follow its limits a moment before would be passed on as unknown,
        and reserved at its maximum by a successor that cannot reach it)."""
        if self.epoch is not None:
            self.planner.verification.checked(self.sensors.limit_checks())
            bequeath(self.authority, self.planner, self.sensors.reported)

    # -- one cycle ---------------------------------------------------------------------------

    async def step(self, cycle: int, tick: float) -> None:
        """One cycle: sense, plan, dispatch (under the authority's epoch), record."""
        began = trio.current_time()
        now = self.clock()
        if self.planner.horizon.deadlines.wall_offset_s is None:
            self.planner.horizon.deadlines.wall_offset_s = self.wall_clock() - now
        epoch = self.authority.epoch()
        if epoch != self.epoch and self.authority is not SOLE:
            if epoch is not None:
                succeed(self.planner, self.authority, now)
            self.events.emit(
                EventLevel.WARNING,
                "cluster",
                "standby: not commanding" if epoch is None else f"commanding (epoch {epoch})",
                category=EventCategory.CONTROL,
            )
        self.epoch = epoch
        sensors = self.sensors
        deadline = trio.current_time() + self.timing.read_share * self.period_s
        readings = await sensors.read(self.energy.read_ops(), deadline)
        self.planner.verification.checked(sensors.limit_checks())
        self.planner.horizon.charging_needs(sensors.charging_needs(), sensors.id_tokens(), now)
        plan = self.planner.plan(readings, now)
        if plan is None:
            return
        if epoch is not None:
            deadline = trio.current_time() + self.timing.command_share * self.period_s
            await self.dispatch.send(plan, now, epoch, deadline)
            bequeath(self.authority, self.planner, self.sensors.reported)
        duration = self.latency_s = trio.current_time() - began
        self.snapshot.record(cycle, now, plan)
        if self._demand_store is not None and self.planner.horizon.demand is not None:
            self._demand_store.keep(self.planner.horizon.demand, now)
        self.snapshot.publish(cycle, plan.result, duration, self.clock())
        if self.cycle_time is not None:
            self.cycle_time(duration)
        self.cycle_ready.set()
        self.cycle_ready = trio.Event()
