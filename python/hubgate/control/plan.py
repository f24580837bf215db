"""One control cycle's arithmetic, sans-IO: readings and time in; allocator input, setpoints
and bookkeeping out.

`CyclePlanner` holds what the control loop knows between cycles (each connector's last
reading, draw, command and watch; the meters' watches; the grid operator's input) and does
a cycle's sums without I/O, Trio or a clock, the way h11's connection sits under its
driver. `hubgate.control.loop.ControlLoop` senses, hands it the readings and the time,
sends what it plans and hands back what came of it:

    plan = planner.plan(readings, now)    # absorb, build the input, allocate (None: failed)
    ...send plan.commands, verifying failsafes first where asked (`Verification.configured`)...
    planner.outcomes(plan, results, now, done_at)

1. `absorb`: a charger that answered is `ok` in its `ChargerWatch`; a meter reading is a
   `MeterWatch` sample; the box's value becomes a `GRID_OPERATOR` lease when it changes;
   devices that are lost or back become events;
2. `inputs`: base load per node (`control.base_load`: metered current minus the last
   known draw of the connectors below it, a value older than the connector's last setpoint
   capped at it, held while a start is known from a charger's state but not yet from its
   values, or while an EV given a new setpoint lately draws nothing yet; a node without a
   trusted meter what the nodes below it carry plus the idle draw of the DC connectors at
   it, and, when its meter is not trusted, at least the rest of the limit in force beyond
   its degraded share),
   unreachable chargers' assumed draw (and the maximum of those not following
   their limits or not verified yet: `Verification`) reserved on their path, the limit book's
   leases (node limits as extra base load, connector limits as EV limits, the grid
   operator's as the root power limit) and the EV-side limit from measured draw (an EV that
   takes less than offered is trimmed, so its headroom goes to others); `SiteEnergy` adds
   the battery's reserve, the peak target and the PV-mode budget; the `Horizon`
   (`control.horizon`) applies the schedules, caps the demand interval and plans the
   sessions with an energy need and a departure over the next 24 h, giving each the floor
   it needs now (A per phase, granted least laxity first);
3. `commands`: a setpoint for every reachable connector whose setpoint changed, or that
   paces its own commands, or whose failsafe settings must be verified first;
4. `outcomes`: what each charger confirmed, for the next cycle's sums.

Node limits from the limit book are applied as a reduction of the node's headroom (extra
base load), which the allocator's fixed tree can take every cycle without losing its dwell
and ramp memory.
"""

from __future__ import annotations

import logging
import math
import time
from array import array
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from operator import sub

from hubgate._core import HubgateError
from hubgate.config.model import SiteConfig
from hubgate.control.allocation import (
    AllocationSettings,
    ConnectorKey,
    CycleInputs,
    CycleResult,
    SiteAllocator,
)
from hubgate.control.base_load import BaseLoads, Credit
from hubgate.control.connector_runtime import (
    EV_HEADROOM_A,
    FOLLOWED_TOLERANCE_A,
    ONE_PHASE_IDLE_A,
    WANTING_STATES,
    ConnectorRuntime,
    plausible_a,
    rise_to,
)
from hubgate.control.cycle import InFlight, LoopTiming
from hubgate.control.dc_holds import HoldRotation
from hubgate.control.deadlines import hold_back
from hubgate.control.decisions import Phases3
from hubgate.control.demand import DemandState
from hubgate.control.device_watch import DeviceWatch, device_paths
from hubgate.control.failsafe import ChargerWatch, MeterWatch
from hubgate.control.failsafe_share import FailsafeShare
from hubgate.control.grid_operator import grid_operator_input, operator_power_source
from hubgate.control.horizon import Horizon
from hubgate.control.limit_in_force import NodeLimit, fold_leases, node_limit
from hubgate.control.limits import LimitBook, LimitSource
from hubgate.control.paragraph_14a import Paragraph14a
from hubgate.control.ramp_reserve import RampReserve, ev_use_a, own_limits_a
from hubgate.control.site_energy import SiteEnergy
from hubgate.control.site_model import SiteModel, with_finite_limits
from hubgate.control.verification import Verification
from hubgate.devices.model import AppliedLimit, Battery, Device, Reading
from hubgate.profiles.model import Quantity
from hubgate.records.events import EventLog
from hubgate.state import EventCategory, EventLevel

log = logging.getLogger(__name__)

_ALL_PHASES = (0, 1, 2)
_NO_DRAW: Phases3 = (0.0, 0.0, 0.0)


@dataclass(frozen=True, slots=True)
class SetpointCommand:
    """A setpoint to send to the connector at `index` (`name`), after configuring and
    verifying its failsafe settings (`failsafe_a`) when `verify_first`."""

    index: int
    name: str
    current_a: float
    phases: int
    verify_first: bool = False
    failsafe_a: float = 0.0


@dataclass(frozen=True)
class Plan:
    """One cycle's allocator input and result, the notes for the decision record, and the
    setpoints to send."""

    inputs: CycleInputs
    result: CycleResult
    notes: tuple[str, ...]
    commands: list[SetpointCommand]


class CyclePlanner:
    """The control cycle's state and sums (see the module docstring)."""

    def __init__(
        self,
        site: SiteConfig,
        limits: LimitBook,
        *,
        meters: Collection[str] = (),
        grid_operator_box: bool = False,
        grid_operator_heartbeat_s: float | None = None,
        battery: Battery | None = None,
        pv: Mapping[str, Device] | None = None,
        feed_in_rule: Mapping[Quantity, float] | None = None,
        paced: Collection[ConnectorKey] = (),
        fixed_failsafe: Mapping[ConnectorKey, float] | None = None,
        allocation: AllocationSettings | None = None,
        timing: LoopTiming | None = None,
        events: EventLog | None = None,
        demand: DemandState | None = None,
    ) -> None:
        """`meters`: ids of the meters with a device; `grid_operator_box`: whether the grid
        operator's box has one (`_heartbeat_s`: its counter's timeout); `feed_in_rule`: its
        contacts' feed-in caps (%); `paced`: connectors taking every cycle's setpoint; `fixed_
        failsafe`: what a charger falls back to whatever told; `events` (None: in memory)."""
        self.site = site
        self.limits = limits
        self.timing = timing or LoopTiming()
        self.events = events if events is not None else EventLog(clock=time.monotonic)
        control = site.control
        self.allocator = SiteAllocator(with_finite_limits(site), allocation)
        self.model = SiteModel.build(site, self.allocator)
        unreachable_s = self.timing.unreachable_after_cycles * control.cycle_s
        self.connectors = [
            ConnectorRuntime(ChargerWatch(unreachable_s, info.max_current_a, self.timing.assume))
            for info in self.model.connectors
        ]
        self._index = {info.name: i for i, info in enumerate(self.model.connectors)}
        self.reachable = bytearray(len(self.model.connectors))
        """Per connector, whether it answers (`ChargerWatch.reachable`) at the time of the
        cycle being planned (`absorb` writes it, `inputs` and `commands` read it)."""
        self._paced = [info.key in paced for info in self.model.connectors]
        self.quiet_until = [-math.inf] * len(self.model.connectors)
        """Per connector that paces its own commands: until when (this planner's clock) an
        unchanged setpoint is not handed to it again (`Dispatch` writes it)."""
        self.meter_node = {m.id: self.allocator.node_index(m.node) for m in site.meters}
        self.meter_watch = {
            m.id: MeterWatch(
                control.meter_stale_after_s,
                self.timing.recover_after_s or 2 * control.meter_stale_after_s,
                control.degraded_budget_percent / 100,
            )
            for m in site.meters
            if m.id in meters
        }
        self.meter_reading: dict[str, Reading] = {}
        self._meters_read: set[str] = set()
        """The meters read this cycle (the others' last reading is older than the draws)."""
        model, settle_s = self.model, self.allocator.settings.settle_s
        self.base_loads = BaseLoads(model, settle_s)
        """Every node's base load per cycle, and what it holds between cycles."""
        self.ramp = RampReserve(model.node_ids, own_limits_a(model), settle_s)
        self.energy = SiteEnergy(
            site,
            self.model,
            battery,
            pv or {},
            self.allocator.node_index,
            limits,
            ev_headroom_a=EV_HEADROOM_A,
            feed_in_rule=feed_in_rule,
        )
        self._operator_power_source = operator_power_source(site)
        operator_sources = frozenset(
            {LimitSource.GRID_OPERATOR}
            | ({self._operator_power_source} if self._operator_power_source else set())
        )
        self.horizon = Horizon(
            site, self.model, limits, self.events, operator_sources=operator_sources, demand=demand
        )
        """Deadlines, schedules, prices and demand charges."""
        self._operator_input = grid_operator_input(
            site, box=grid_operator_box, heartbeat_s=grid_operator_heartbeat_s
        )
        self.paragraph_14a = Paragraph14a.of_site(site, self.allocator.connector_keys)
        self.devices = DeviceWatch(self.events, device_paths(site, self.model))
        """Which devices answer, and the events when that changes."""
        self.last_result: CycleResult | None = None
        self.failsafes = FailsafeShare(self.model, control, fixed_failsafe)
        """The failsafe current each connector is to be configured with (`failsafe_a`)."""
        self.verification = Verification(
            self.model, self.connectors, self.failsafes, self.events, self.devices.paths
        )
        """Whether each connector's reading counts, and what it falls back to."""
        self.last_inputs: CycleInputs | None = None
        self.holds = (
            HoldRotation(
                [self.model.ancestors[info.node] for info in self.model.connectors],
                control.hold_rotate_s,
            )
            if any(info.hold_minimum for info in self.model.connectors)
            else None
        )
        """Which idle DC holds yield to EVs while a limit binds (None: the site has none)."""

    @property
    def failsafe_a(self) -> Sequence[float]:
        """The failsafe current each connector is to be configured with (`FailsafeShare`)."""
        return self.failsafes.failsafe_a

    # -- a cycle ---------------------------------------------------------------------------

    def plan(self, readings: Mapping[str, object], now: float) -> Plan | None:
        """Absorb this cycle's readings, build the input and allocate; None (and an alarm)
        when the allocation failed, so the last setpoints stay."""
        self.absorb(readings, now)
        inputs, notes = self.inputs(now)
        try:
            result = self.allocator.allocate(inputs)
        except HubgateError as exc:
            log.error("allocation failed, keeping the last setpoints: %s", exc)
            self.events.emit(
                EventLevel.ALARM,
                "allocation",
                f"failed, the last setpoints stay: {exc}",
                category=EventCategory.CONTROL,
            )
            return None
        self.last_result, self.last_inputs = result, inputs
        self.energy.settle(result, [r.watch.reachable(now) for r in self.connectors])
        return Plan(inputs, result, tuple(notes), self.commands(result, now))

    def absorb(self, readings: Mapping[str, object], now: float) -> None:
        """Take this cycle's readings (or failures) by device name."""
        seen, check_validity = self.devices.seen, self.verification.held.check_validity
        reachable = self.reachable
        for i, (info, runtime) in enumerate(
            zip(self.model.connectors, self.connectors, strict=True)
        ):
            reading = readings.get(info.name)
            if isinstance(reading, Reading):
                runtime.watch.ok(now)
                if reading is not runtime.reading:  # (not an OCPP report kept from before)
                    most_a = plausible_a(info.max_current_a)
                    if runtime.take(reading, info.grid_phases, most_a):
                        self.devices.implausible(info.name, reading, most_a, now)
                    if runtime.watch.inherited_draw_a is not None:  # (after a hand-over)
                        runtime.inherit_draw(now)
                check_validity(i, reading)
            elif info.name in readings and not isinstance(reading, InFlight):
                runtime.watch.missed()
            reachable[i] = answers = runtime.watch.reachable(now)
            seen(info.name, answers, reading, now)
        self._meters_read.clear()
        for meter_id, watch in self.meter_watch.items():
            reading = readings.get(f"meter:{meter_id}")
            if isinstance(reading, Reading) and reading.phase_currents() is not None:
                watch.sample(reading.at)
                self.meter_reading[meter_id] = reading
                self._meters_read.add(meter_id)
            self.devices.seen(f"meter:{meter_id}", isinstance(reading, Reading), reading, now)
        for name, outcome in self.energy.absorb(readings).items():
            self.devices.seen(name, isinstance(outcome, Reading), outcome, now)
        if self._operator_input is not None:
            box = readings.get("grid-operator")
            if "grid-operator" in readings:
                self.devices.seen("grid-operator", isinstance(box, Reading), box, now)
            change = self._operator_input.update(
                self.limits, box if isinstance(box, Reading) else None, now
            )
            if change is not None:
                back = change.startswith("back")
                self.events.emit(
                    EventLevel.INFO if back else EventLevel.WARNING,
                    "grid-operator",
                    change,
                    category=EventCategory.GRID_OPERATOR,
                )

    def inputs(self, now: float) -> tuple[CycleInputs, list[str]]:
        """The allocator's input for this cycle and the notes for the decision record."""
        self.horizon.apply_schedules(now)
        model = self.model
        n_nodes = len(model.node_ids)
        base = array("d", bytes(8 * 3 * n_nodes))
        draws: list[Phases3] = []  # per connector, what counts against its meters
        credits: dict[int, Credit] = {}  # ... and what the meters may show above that
        inherited: dict[int, Phases3] = {}  # ... the draws passed on at a hand-over
        reserved = [[0.0, 0.0, 0.0] for _ in range(n_nodes)]
        reserved_w = 0.0  # what the reserved connectors may draw on top of their draw
        ev_max = array("d", [math.inf]) * len(model.connectors)
        wanting = array("b", bytes(len(model.connectors)))
        session = bytearray(len(model.connectors))  # an EV plugged in, for the failsafe budget
        holds = bytearray(len(model.connectors))  # configured with the failsafe current now
        may_hold = array("d", bytes(8 * len(model.connectors)))  # ... what it may fall back to
        failsafe, settle_s = self.site.control.failsafe_current_a, self.allocator.settings.settle_s
        notes: list[str] = []

        limits = [self.node_limit(node, now).phase_a for node in range(n_nodes)]  # read once
        limit_a, under_cut = limits.__getitem__, self.base_loads.cut(limits)

        decided = None if self.last_result is None else self.last_result.setpoint_a
        rotation = self.holds
        idle: list[int] = []  # idle DC holds and EVs wanting current, when the site has holds
        asking: list[int] = []
        devices, lease_s, fallen_back = (
            self.devices,
            self.site.control.lease_s,
            self.devices.fallen_back,
        )
        reservation, told_max_a = self.verification.reservation, self.horizon.deadlines.told_max_a
        reachable, fallback_a = self.reachable, self.verification.fallback_a
        for i, (info, runtime) in enumerate(zip(model.connectors, self.connectors, strict=True)):
            reading = runtime.reading
            session[i] = reading is not None and reading.state in WANTING_STATES
            holds[i] = runtime.failsafe_a == failsafe
            may_hold[i] = fallback_a(i)
            if info.name in fallen_back or not reachable[i]:
                devices.fallback(
                    info.name, runtime.watch, now, lease_s=lease_s, failsafe_a=may_hold[i]
                )
            reserved_at = reservation(i, now)
            draw, falling = runtime.known_draw(now, settle_s, reserved=reserved_at is not None)
            draws.append(draw)
            if (
                runtime.watch.inherited_draw_a is not None  # (after a hand-over)
                and (passed_on := runtime.inheriting(now)) is not None
            ):
                inherited[i] = passed_on
            if any(falling) and info.node in under_cut and not runtime.read_now(now):
                falling = _NO_DRAW  # a cut ends what its way down explained: base load
            if any(falling):  # on its way down since the decrease went out
                credits[i] = (runtime.least_at, falling)
            phases = (info.grid_phases[0],) if info.one_phase else _ALL_PHASES
            if reserved_at is not None:
                assumed, why = reserved_at
                for node in model.ancestors[info.node]:
                    for p in phases:
                        reserved[node][p] += assumed
                reserved_w += sum(max(assumed - draw[p], 0.0) for p in phases) * model.voltage_v
                notes.append(f"{info.name} {why}: {assumed:g} A reserved")
                continue
            if reading is None:
                continue
            drawn = max(runtime.draw)
            unseen = runtime.may_start_unseen(now, cut=info.node in under_cut)
            if reading.state in WANTING_STATES and reading.state_newer_than_values():
                # Started (its status says so) before its values show it: what the meters
                # see rise, up to what it may draw, is its draw, not base load (for
                # settle_s from the change).
                allowance = info.max_current_a if runtime.sent_a is None else runtime.sent_a
                since = now if reading.state_at is None else reading.state_at
                if unseen and now - since < settle_s:
                    rise = rise_to(allowance, falling, runtime.draw, phases)
                    credits[i] = (max(since, runtime.least_at) if any(falling) else since, rise)
                wanting[i] = True
                ev_max[i] = runtime.ev_limit_a
                if rotation is not None:
                    asking.append(i)
                continue
            wants = reading.state in WANTING_STATES or (reading.state is None and drawn > 1.0)
            if not wants:
                runtime.started = False
            elif drawn >= ONE_PHASE_IDLE_A:
                runtime.started = True
            not_yet = wants and not runtime.started  # wants current, has drawn none yet
            if (
                runtime.lowered_at is not None
                and runtime.sent_a is not None
                and reading.at > runtime.lowered_at
                # an EV may still take an earlier, higher offer (EVs take them in turn)
                and (not wants or reading.at >= runtime.raised_at + settle_s)
                and reading.phase_currents() is not None  # every phase measured then
                and not runtime.implausible
            ):
                if drawn <= runtime.sent_a + FOLLOWED_TOLERANCE_A:
                    # The headroom the decrease freed is confirmed: no need to wait out
                    # settle_s. (Not by an EV that has not started yet: it may start at
                    # the offer before the decrease, which it follows only later.)
                    if not not_yet:
                        self.allocator.confirm_followed(i)
                        self.ramp.lag.followed(runtime.followed(reading.at))
                else:  # on its way down: what it still draws is all it keeps reserved
                    self.allocator.confirm_draw(i, drawn)
                    runtime.seen_above = True
            if not_yet and now - runtime.sent_at < settle_s and unseen:
                # Offered a new setpoint lately, not started yet: it may start any moment,
                # at its setpoint, before its values show it (an OCPP station's lag): what
                # the meters see rise up to that after its values is its draw.
                unknown = credits[i][1] if i in credits else falling
                rise = rise_to(runtime.sent_a or 0.0, unknown, runtime.draw, phases)
                credits[i] = (max(runtime.sent_at, reading.at), rise)
            if info.three_phase and runtime.observe_phases(wants):
                self.allocator.set_ev_phase(i, runtime.ev_phase)
                self.energy.ev_phases[i] = 3 if runtime.ev_phase is None else 1
            wanting[i] = runtime.wants_offer(
                wants, info.hold_minimum, None if decided is None else decided[i]
            )
            told_a = told_max_a(i)
            ev_max[i] = min(runtime.ev_estimate(wants, drawn, now), told_a)
            if not wants and info.hold_minimum:  # idle, offered its minimum: no more
                ev_max[i] = info.min_current_a
            if rotation is not None and wants:
                asking.append(i)
            elif rotation is not None and info.hold_minimum:
                idle.append(i)
        if rotation is not None and (
            yielding := rotation.yielding(now, idle, asking, self.last_result)
        ):
            for i in yielding:
                wanting[i] = False
                self.connectors[i].held_a = None  # its hold comes back at its turn, at once
            notes.append(f"{len(yielding)} idle DC holds yield to EVs under a binding limit")
        measured: dict[int, Phases3] = {}
        starting: dict[int, Phases3] = {}  # for the failsafe room (`FailsafeShare.starting`)
        share: dict[int, float] = {}
        unread: set[int] = set()  # trusted, but not read this cycle
        for meter_id, watch in self.meter_watch.items():
            node = self.meter_node[meter_id]
            share[node] = watch.budget_share(now)
            self.devices.meter_trust(
                meter_id,
                model.node_ids[node],
                share[node] >= 1.0,
                degraded_percent=self.site.control.degraded_budget_percent,
            )
            reading = self.meter_reading.get(meter_id)
            currents = reading.signed_phase_currents() if reading is not None else None
            if share[node] >= 1.0 and currents is not None:
                measured[node] = currents
                if meter_id not in self._meters_read:
                    unread.add(node)
            elif self.failsafes.starting(node, watch.health(now), now) and currents is not None:
                starting[node] = currents
        grid_operator_w, peak_w = fold_leases(
            self.limits,
            model,
            self.allocator,
            now,
            base,
            ev_max,
            operator_power_source=self._operator_power_source,
            safety_margin_a=self.site.grid.safety_margin_a,
        )
        lease_cut = array("d", base)  # base was 0 before: the headroom the leases take
        read = [runtime.draw for runtime in self.connectors]
        known = (model.paths.sum_up(draws), draws, read)
        loads = self.base_loads.loads(
            measured, share, unread, known, credits, limit_a, now, inherited=inherited
        )
        for node in range(n_nodes):
            for p in range(3):
                base[3 * node + p] += loads[node][p] + reserved[node][p]
            if node in share and share[node] < 1.0:
                notes.append(f"{model.node_ids[node]} meter lost: {share[node]:.0%} budget")
        own = array("d", map(sub, base, lease_cut))
        if starting:
            at = self.base_loads.loads(
                measured | starting,
                share,
                unread,
                known,
                credits,
                limit_a,
                now,
                inherited=inherited,
                remember=False,
            )
            own = array("d", [at[n][p] + reserved[n][p] for n in range(n_nodes) for p in range(3)])
        self.failsafes.share(own, reserved, session, holds, may_hold, limit_a)
        if self._operator_input is not None and (lost := self._operator_input.note):
            notes.append(lost)
        operator_w = grid_operator_w  # the battery is no §14a device: it gets no floor
        if self.paragraph_14a is not None and math.isfinite(grid_operator_w):
            # the rest of the site: connectors reserved at their maximum are EV load
            root_w = (sum(base[0:3]) - sum(reserved[0])) * model.voltage_v
            grid_operator_w = self.paragraph_14a.operator_limit_w(grid_operator_w, root_w, wanting)
        demand_w = self.horizon.demand_cap_w(
            now, self.energy.grid_import_w, base, self.connectors, (ev_max, wanting), notes
        )
        energy = self.energy.plan(
            now,
            base=base,
            measured=measured,
            meter_readings=self.meter_reading,
            draws=read,
            wanting=wanting,
            ev_max=ev_max,
            grid_operator_w=grid_operator_w,
            battery_operator_w=operator_w,
            reserved_w=reserved_w,
            peak_w=min(peak_w, demand_w),
            last=self.last_result,
        )
        notes.extend(energy.notes)
        evs = partial(ev_use_a, model, self.connectors, self.last_result)
        notes += self.ramp.withhold(now, base, loads, measured.keys() - unread, self.energy, evs)
        deadlines = self.horizon.deadline_inputs(now, base, lease_cut, self.connectors)
        if held := hold_back(deadlines.ceiling_a, ev_max):
            notes.append(f"prices: {held} sessions with slack wait for cheaper slots")
        return (
            CycleInputs(
                now,
                base,
                ev_max,
                wanting,
                energy.pv_mode,
                grid_operator_w=grid_operator_w,
                peak_w=energy.peak_w,
                pv_surplus_w=energy.pv_surplus_w,
                battery_discharge_w=energy.battery_discharge_w,
                floor_a=deadlines.floor_a,
                laxity_s=deadlines.laxity_s,
            ),
            notes,
        )

    def node_limit(self, node: int, now: float) -> NodeLimit:
        """The limit in force on `node` now and what sets it (`control.limit_in_force`): its
        cap, the limit book's leases (at the root the grid operator's and the peak target
        too). A lost meter's node keeps its degraded share of this, not of its cap, so a
        limit below the cap still leaves room."""
        return node_limit(self.horizon.bounds(node, now), self.model.voltage_v)

    def commands(self, result: CycleResult, now: float) -> list[SetpointCommand]:
        """The setpoints to send: to every reachable connector whose setpoint changed, or
        that paces its own commands and is due (`quiet_until`); failsafe verification first
        where needed (`try_verifying`). A verified connector whose failsafe is to change (its
        share did, a larger one was asked for since, or its held fallback is due to be read)
        keeps getting its setpoints between the tries: the failsafe it was verified with
        stays in force until then."""
        setpoints, phases = result.setpoint_a, result.phases
        paced, quiet_until = self._paced, self.quiet_until
        failsafes, asked, reread_due = (
            self.failsafe_a,
            self.verification.asked_a,
            self.verification.held.reread_due,
        )
        reachable, commands = self.reachable, []
        for i, (info, runtime) in enumerate(
            zip(self.model.connectors, self.connectors, strict=True)
        ):
            if not reachable[i]:
                continue
            watch, setpoint = runtime.watch, setpoints[i]
            n_phases = self._told_phases(i, phases)
            failsafe = failsafes[i]
            reconfigure = (
                runtime.failsafe_a != failsafe
                or asked[i] > failsafe  # a larger one may be in force
                or reread_due(i, now)
            )
            if watch.needs_verification and i in self.failsafes.waiting:
                continue  # its failsafe waits for a meter's first reading
            if watch.needs_verification or reconfigure:
                if runtime.try_verifying(now):
                    self.verification.asking(i, failsafe)
                    commands.append(
                        SetpointCommand(i, info.name, setpoint, n_phases, True, failsafe)
                    )
                    continue
                if watch.needs_verification:
                    continue
            if (
                runtime.sent_a != setpoint
                or runtime.sent_phases != n_phases
                or (paced[i] and now >= quiet_until[i])
            ):
                commands.append(SetpointCommand(i, info.name, setpoint, n_phases))
        return commands

    def _told_phases(self, index: int, phases: Sequence[int]) -> int:
        """The phase count a connector is told with its setpoint: the allocator's, but three
        for a one-phase EV at a three-phase connector (counted on its phase, not switched)."""
        return 3 if self.connectors[index].ev_phase is not None else phases[index]

    def take_over(self) -> None:
        """This gateway starts commanding under a new epoch (`Verification.take_over`): every
        charger is verified again and sent its setpoint, every battery command and PV cap is
        sent again."""
        self.verification.take_over()
        self.energy.resend()

    def outcomes(
        self, plan: Plan, results: Mapping[str, object], now: float, done_at: float
    ) -> None:
        """What came of the setpoints sent at `now`, by connector name: an `AppliedLimit`,
        or a failure (sent again next cycle); `done_at` is when the last one came back."""
        setpoints, phases = plan.result.setpoint_a, plan.result.phases
        for name, outcome in results.items():
            i = self._index[name]
            runtime = self.connectors[i]
            if isinstance(outcome, AppliedLimit):
                if runtime.sent_a != setpoints[i]:
                    runtime.sent_at = now
                if runtime.sent_a is None or setpoints[i] > runtime.sent_a:
                    runtime.raised_at = done_at
                if outcome.current_a <= setpoints[i] and (
                    runtime.sent_a is None or setpoints[i] < runtime.sent_a
                ):
                    runtime.lowered_at = done_at
                if runtime.least_a is None or setpoints[i] < runtime.least_a:
                    runtime.least_a, runtime.least_at = setpoints[i], now
                runtime.sent_a, runtime.sent_phases = setpoints[i], self._told_phases(i, phases)
                runtime.watch.commanded(max(outcome.current_a, setpoints[i]))
                runtime.watch.ok(now)
            else:  # it may have reached the charger (cut short at the deadline, its
                # exchange going on): counted as if it had, until an answer says more
                runtime.sent_a = None
                watch = runtime.watch
                if watch.last_command_a is not None:
                    watch.last_command_a = max(watch.last_command_a, setpoints[i])
                log.debug("command to %s failed: %s", name, outcome)

    def energy_commanded(self, name: str, outcome: object, now: float) -> None:
        """The battery's or a PV inverter's answer to its command this cycle
        (`SiteEnergy.command_ops`)."""
        problem = self.energy.commanded(name, outcome, now)
        if problem is not None:
            category = EventCategory.BATTERY if name.startswith("battery") else EventCategory.DEVICE
            self.events.emit(EventLevel.WARNING, name, problem, category=category)

    # -- between cycles --------------------------------------------------------------------

    def connector_index(self, target: str) -> int | None:
        """The index of the connector `charger-id#n`, None when there is none."""
        return self.allocator.find_connector(target)
