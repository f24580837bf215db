"""The control loop: every cycle, sense the site, allocate, command every charger.

One cycle (`ControlLoop.step`):

1. read every charger, meter and the grid-operator box at once, each cancelled
   at the same deadline (`gather_by_deadline`); OCPP chargers answer from the
   latest MeterValues at once;
2. feed the failsafe watches: a meter that is stale or lost leaves its node a
   degraded share of its limit until it has been fresh for a while again; a
   charger that does not answer is assumed to draw the larger of its last
   command and its failsafe current (its maximum until its failsafe settings
   were verified), reserved on its node and every node above it;
3. build the allocation input: base load per node (metered current minus the
   last known draw of the connectors below it), the limits in force from the
   limit book (site, nodes, connectors; the grid operator's as the root power
   limit with the §14a floor), and the EV-side limit from measured draw (an EV
   that takes less than offered is trimmed, so its headroom goes to others);
   `SiteEnergy` adds the battery's reserve, the peak target and the PV-mode
   budget (docs/control.md, "Battery and PV");
4. allocate, then dispatch the setpoints concurrently (a charger that came back
   has its own failsafe settings configured and verified first);
5. append a decision record, publish a `SiteState` and record the cycle time.

Node limits from the limit book are applied as a reduction of the node's
headroom (extra base load), which the allocator's fixed tree can take every
cycle without losing its dwell and ramp memory.
"""

from __future__ import annotations

import logging
import math
import time
from array import array
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import trio

from hubgate._core import AllocReason
from hubgate.allocation import AllocationSettings, CycleInputs, CycleResult, SiteAllocator
from hubgate.api.commands import CommandRejectedError
from hubgate.api.metrics import MetricsRegistry
from hubgate.config.model import PRIORITY_MAX, GridOperatorSource, SiteConfig
from hubgate.control.cycle import CycleStats, Failed, TimedOut, gather_by_deadline, run_cycles
from hubgate.control.decisions import ConnectorDecision, DecisionLog, DecisionRecord
from hubgate.control.failsafe import AssumeDraw, ChargerWatch, MeterWatch
from hubgate.control.grid_operator import GridOperatorInput, connection_kw
from hubgate.control.limits import SITE, Limit, LimitBook, LimitSource
from hubgate.control.paragraph_14a import Paragraph14a
from hubgate.control.site_energy import SiteEnergy
from hubgate.control.site_model import SiteModel, with_finite_limits
from hubgate.devices.model import AppliedLimit, Charger, Device, IecState, Reading
from hubgate.devices.profile_driver import ProfileDevice
from hubgate.devices.sensing import FULL_EVERY, CycleReader
from hubgate.devices.storage import Battery, BatteryDevice
from hubgate.errors import HubgateError
from hubgate.ocpp.device import OcppCharger
from hubgate.ocpp.operations import ChargerOperations
from hubgate.profiles.model import Quantity
from hubgate.state import (
    ConnectorState,
    DeviceHealth,
    Event,
    EventLevel,
    NodeState,
    SiteState,
    StateHub,
)

log = logging.getLogger(__name__)

EV_HEADROOM_A = 2.0
"""An EV that draws less than offered keeps this much above its draw, so it can climb."""

EV_SETTLE_S = 10.0
"""How long a setpoint must stand before the draw under it says what the EV wants."""

FOLLOWED_TOLERANCE_A = 0.25
"""An EV drawing at most this much above a lowered setpoint has followed it."""

WANTING_STATES = frozenset({IecState.B, IecState.C, IecState.D})

Phases3 = tuple[float, float, float]


@dataclass(frozen=True)
class SiteDevices:
    """What the loop talks to: a charger per connector, meters by id, the grid-operator box,
    the stationary battery and PV inverters by id."""

    chargers: Mapping[tuple[str, int], Charger]
    meters: Mapping[str, Device] = field(default_factory=dict)
    grid_operator: Device | None = None
    battery: Battery | None = None
    pv: Mapping[str, Device] = field(default_factory=dict)


@dataclass(frozen=True)
class LoopTiming:
    """Deadlines within a cycle, as shares of the cycle period, and failsafe timings."""

    read_share: float = 0.4
    command_share: float = 0.4
    unreachable_after_cycles: float = 3.0
    recover_after_s: float | None = None
    """A lost meter is trusted again after being fresh this long (default: twice `meter_stale_s`)."""
    assume: AssumeDraw = AssumeDraw.LAST_COMMAND
    """An unreachable charger's assumed draw: a verified one holds its last command or
    falls to its failsafe current, so reserving its maximum would pause others for nothing."""
    full_read_every: int = FULL_EVERY
    """Modbus devices read their non-control fields every this many cycles (`CycleReader`)."""


@dataclass
class _ConnectorRuntime:
    watch: ChargerWatch
    reading: Reading | None = None
    sent_a: float | None = None
    sent_phases: int = 0
    sent_at: float = -math.inf
    draw: Phases3 = (0.0, 0.0, 0.0)
    """Latest known draw on the grid phases (A)."""
    failsafe_unverified: bool = False
    """Its failsafe settings could not be configured: treated as unreachable until they are."""
    ev_limit_a: float = math.inf
    """What the EV is estimated to take, from its draw under a settled setpoint."""
    lowered_at: float | None = None
    """When a lowered setpoint was accepted, until a later reading shows the EV followed it."""

    def ev_estimate(self, wants: bool, drawn: float, now: float) -> float:
        """Trim to the draw when the EV takes less than offered; release once it takes all."""
        if not wants:
            self.ev_limit_a = math.inf
        elif self.sent_a and now - self.sent_at >= EV_SETTLE_S:
            if drawn < self.sent_a - EV_HEADROOM_A:
                self.ev_limit_a = drawn + EV_HEADROOM_A
            elif drawn >= self.sent_a - EV_HEADROOM_A / 4:
                self.ev_limit_a = math.inf
        return self.ev_limit_a


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
        metrics: MetricsRegistry | None = None,
        allocation: AllocationSettings | None = None,
        timing: LoopTiming | None = None,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        self.site = site
        self.devices = devices
        self.limits = limits
        self.decisions = decisions
        self.hub = hub
        self.metrics = metrics
        self.timing = timing or LoopTiming()
        self.clock = clock
        self.stats = CycleStats()
        self.latencies_s: deque[float] = deque(maxlen=10_000)
        """Per cycle: from the start of sensing to the last command sent (s)."""
        control = site.control
        self.period_s = control.cycle_s
        self.allocator = SiteAllocator(with_finite_limits(site), allocation)
        self.model = SiteModel.build(site, self.allocator)
        unreachable_s = self.timing.unreachable_after_cycles * control.cycle_s
        self._connectors = [
            _ConnectorRuntime(
                ChargerWatch(
                    unreachable_s,
                    info.max_current_a,
                    self.timing.assume,
                    failsafe_a=control.failsafe_current_a,
                )
            )
            for info in self.model.connectors
        ]
        missing = [c.name for c in self.model.connectors if c.key not in devices.chargers]
        if missing:
            raise ValueError(f"no device for connectors {', '.join(missing)}")
        self._meter_node = {m.id: self.allocator.node_index(m.node) for m in site.meters}
        self._meter_watch = {
            m.id: MeterWatch(
                control.meter_stale_s,
                self.timing.recover_after_s or 2 * control.meter_stale_s,
                control.degraded_budget_percent / 100,
            )
            for m in site.meters
            if m.id in devices.meters
        }
        self._meter_reading: dict[str, Reading] = {}
        self.energy = SiteEnergy(
            site, self.model, devices.battery, devices.pv, self.allocator.node_index, limits
        )
        self._readers: dict[str, CycleReader] = {}
        self._protocols = {info.name: info.protocol for info in self.model.connectors}
        self._by_name: dict[str, Device] = {
            info.name: devices.chargers[info.key] for info in self.model.connectors
        } | {f"meter:{meter_id}": meter for meter_id, meter in devices.meters.items()}
        self._by_name |= {f"pv:{pv_id}": pv for pv_id, pv in devices.pv.items()}
        if isinstance(devices.battery, BatteryDevice):
            self._by_name[f"battery:{devices.battery.id}"] = devices.battery.driver
        operator = site.grid_operator
        self._operator_power_source = {
            GridOperatorSource.MODBUS_SERVER: LimitSource.MODBUS_SERVER,
            GridOperatorSource.API: LimitSource.API,
        }.get(operator.source if operator else GridOperatorSource.MODBUS_DEVICE)
        self._operator_input = (
            GridOperatorInput(
                connection_kw(site),
                control.meter_stale_s,
                operator.hold_last_s,
                operator.fallback_percent,
                origin="grid-operator-box" if devices.grid_operator else "grid-operator",
                lease_source=None if devices.grid_operator else self._operator_power_source,
            )
            if operator is not None
            and (devices.grid_operator is not None or self._operator_power_source is not None)
            else None
        )
        self.paragraph_14a = Paragraph14a.of_site(site, self.allocator.connector_keys)
        self._events: deque[Event] = deque(maxlen=50)
        self._device_health: dict[str, bool] = {}
        self.last_result: CycleResult | None = None
        self.last_inputs: CycleInputs | None = None
        self.cycle_ready = trio.Event()

    # -- running -----------------------------------------------------------------------------

    async def run(
        self, *, task_status: trio.TaskStatus[CycleStats] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Cycle until cancelled, with every charger's heartbeat on its own period
        (the first ones spread over the period, so they do not all land in one cycle)."""
        async with trio.open_nursery() as nursery:
            chargers = self.devices.chargers
            for i, (key, charger) in enumerate(chargers.items()):
                period = charger.heartbeat_period_s
                if period is not None:
                    first = period * (i + 1) / len(chargers)
                    nursery.start_soon(self._heartbeats, key, charger, period, first)
            await nursery.start(self._cycles)
            task_status.started(self.stats)

    async def _cycles(self, *, task_status: trio.TaskStatus[CycleStats]) -> None:
        await run_cycles(self.period_s, self.step, stats=self.stats, task_status=task_status)

    async def _heartbeats(
        self, key: tuple[str, int], charger: Charger, period_s: float, first_s: float
    ) -> None:
        runtime = self._connectors[self.allocator.connector_index(key)]
        delay_s = first_s
        while True:
            await trio.sleep(delay_s)
            delay_s = period_s
            if runtime.watch.needs_verification or not runtime.watch.reachable(self.clock()):
                continue
            with trio.move_on_after(period_s):
                try:
                    await charger.heartbeat()
                except Exception as exc:  # a missed heartbeat shows as unreachable later
                    log.debug("heartbeat %s#%d failed: %s", key[0], key[1], exc)

    async def safe_stop(self, timeout_s: float = 5.0) -> dict[str, bool]:
        """Command every reachable charger to the site's failsafe current (on shutdown)."""
        current = self.site.control.failsafe_current_a
        ops = {
            info.name: _setter(self.devices.chargers[info.key], current, 1 if info.one_phase else 3)
            for info in self.model.connectors
        }
        results = await gather_by_deadline(ops, trio.current_time() + timeout_s)
        return {name: isinstance(r, AppliedLimit) for name, r in results.items()}

    # -- one cycle ---------------------------------------------------------------------------

    async def step(self, cycle: int, tick: float) -> None:
        """One cycle: sense, allocate, dispatch, record."""
        began = trio.current_time()
        now = self.clock()
        readings = await self._sense(now)
        self._absorb(readings, now)
        inputs, notes = self._inputs(now)
        try:
            result = self.allocator.allocate(inputs)
        except HubgateError as exc:
            log.error("allocation failed, keeping the last setpoints: %s", exc)
            self._event(EventLevel.ALARM, "allocation", str(exc))
            return
        self.last_result, self.last_inputs = result, inputs
        await self._dispatch(result, now)
        self.latencies_s.append(trio.current_time() - began)
        duration = trio.current_time() - began
        self._record(cycle, now, inputs, result, notes)
        self._publish(cycle, result, duration)
        if self.metrics is not None:
            self.metrics.cycle_time.observe(duration)
        self.cycle_ready.set()
        self.cycle_ready = trio.Event()

    async def _sense(self, now: float) -> dict[str, object]:
        ops: dict[str, Callable[[], Awaitable[object]]] = {}
        known: dict[str, object] = {}
        for info in self.model.connectors:
            charger = self.devices.chargers[info.key]
            if isinstance(charger, OcppCharger):  # answers from memory: no task needed
                try:
                    known[info.name] = await charger.read()
                except HubgateError as exc:
                    known[info.name] = Failed(exc)
            else:
                ops[info.name] = self._reader(info.name, charger)
        for meter_id, meter in self.devices.meters.items():
            ops[f"meter:{meter_id}"] = self._reader(f"meter:{meter_id}", meter)
        if self.devices.grid_operator is not None:
            ops["grid-operator"] = self.devices.grid_operator.read
        ops |= self.energy.read_ops()
        deadline = trio.current_time() + self.timing.read_share * self.period_s
        return known | await gather_by_deadline(ops, deadline)

    def _reader(self, name: str, device: Device) -> Callable[[], Awaitable[Reading]]:
        if not isinstance(device, ProfileDevice):
            return device.read
        reader = self._readers.get(name)
        if reader is None or reader.device is not device:
            reader = CycleReader(device, full_every=self.timing.full_read_every)
            self._readers[name] = reader
        return reader.read

    def _absorb(self, readings: Mapping[str, object], now: float) -> None:
        for info, runtime in zip(self.model.connectors, self._connectors, strict=True):
            reading = readings.get(info.name)
            if isinstance(reading, Reading):
                runtime.watch.ok(now)
                runtime.reading = reading
                runtime.draw = _grid_draw(reading, info.grid_phases)
            self._health(info.name, runtime.watch.reachable(now), reading)
        for meter_id, watch in self._meter_watch.items():
            reading = readings.get(f"meter:{meter_id}")
            if isinstance(reading, Reading) and reading.phase_currents() is not None:
                watch.sample(reading.at)
                self._meter_reading[meter_id] = reading
            self._health(f"meter:{meter_id}", isinstance(reading, Reading), reading)
        for name, outcome in self.energy.absorb(readings).items():
            self._health(name, isinstance(outcome, Reading), outcome)
        if self._operator_input is not None:
            box = readings.get("grid-operator")
            lost = self._operator_input.update(
                self.limits, box if isinstance(box, Reading) else None, now
            )
            if lost is not None:
                self._event(EventLevel.WARNING, "grid-operator", lost)

    def _health(self, name: str, reachable: bool, outcome: object) -> None:
        if self._device_health.get(name, True) != reachable:
            if reachable:
                self._event(EventLevel.INFO, name, "reachable again")
            else:
                why = "no answer" if isinstance(outcome, TimedOut) else str(outcome)
                if isinstance(outcome, Failed):
                    why = f"{type(outcome.error).__name__}: {outcome.error}"
                self._event(EventLevel.WARNING, name, f"unreachable ({why})")
        self._device_health[name] = reachable

    def _event(self, level: EventLevel, subject: str, message: str) -> None:
        self._events.append(Event(at=time.time(), level=level, subject=subject, message=message))

    def _inputs(self, now: float) -> tuple[CycleInputs, list[str]]:
        model = self.model
        n_nodes = len(model.node_ids)
        base = array("d", bytes(8 * 3 * n_nodes))
        known = [[0.0, 0.0, 0.0] for _ in range(n_nodes)]
        reserved = [[0.0, 0.0, 0.0] for _ in range(n_nodes)]
        ev_max = array("d", [math.inf]) * len(model.connectors)
        wanting = array("b", bytes(len(model.connectors)))
        notes: list[str] = []
        for i, (info, runtime) in enumerate(zip(model.connectors, self._connectors, strict=True)):
            assumed = runtime.watch.assumed_draw_a(now)
            if assumed is None and runtime.failsafe_unverified:
                assumed = info.max_current_a
            for node in model.ancestors[info.node]:
                for p in range(3):
                    known[node][p] += runtime.draw[p]
            if assumed is not None:
                phases = (info.grid_phases[0],) if info.one_phase else (0, 1, 2)
                for node in model.ancestors[info.node]:
                    for p in phases:
                        reserved[node][p] += assumed
                why = "failsafe not verified" if runtime.failsafe_unverified else "unreachable"
                notes.append(f"{info.name} {why}: {assumed:g} A reserved")
                continue
            reading = runtime.reading
            if reading is None:
                continue
            drawn = max(runtime.draw)
            if (
                runtime.lowered_at is not None
                and runtime.sent_a is not None
                and reading.at > runtime.lowered_at
                and reading.phase_currents() is not None  # every phase measured then
                and drawn <= runtime.sent_a + FOLLOWED_TOLERANCE_A
            ):
                # The headroom the decrease freed is confirmed: no need to wait out settle_s.
                self.allocator.confirm_followed(i)
                runtime.lowered_at = None
            wants = reading.state in WANTING_STATES or (reading.state is None and drawn > 1.0)
            wanting[i] = wants
            ev_max[i] = runtime.ev_estimate(wants, drawn, now)
        measured: dict[int, Phases3] = {}
        share: dict[int, float] = {}
        for meter_id, watch in self._meter_watch.items():
            node = self._meter_node[meter_id]
            share[node] = watch.budget_share(now)
            reading = self._meter_reading.get(meter_id)
            currents = reading.signed_phase_currents() if reading is not None else None
            if share[node] >= 1.0 and currents is not None:
                measured[node] = currents
        grid_operator_w, peak_w = self._apply_limits(now, base, ev_max)
        for node in range(n_nodes):
            degraded = node not in measured and node in share
            limit = self._limit_in_force_a(node, now, grid_operator_w, peak_w) if degraded else None
            for p in range(3):
                if node in measured:  # signed: PV and a discharging battery feed back
                    value = measured[node][p] - known[node][p]
                elif limit is not None:
                    value = limit[p] * (1 - share[node])
                else:
                    value = 0.0
                base[3 * node + p] += value + reserved[node][p]
            if node in share and share[node] < 1.0:
                notes.append(f"{model.node_ids[node]} meter lost: {share[node]:.0%} budget")
        if self.paragraph_14a is not None and math.isfinite(grid_operator_w):
            root_w = sum(base[0:3]) * model.voltage_v
            grid_operator_w = self.paragraph_14a.operator_limit_w(grid_operator_w, root_w, wanting)
        energy = self.energy.plan(
            now,
            base=base,
            measured=measured,
            meter_readings=self._meter_reading,
            draws=[runtime.draw for runtime in self._connectors],
            wanting=wanting,
            ev_max=ev_max,
            grid_operator_w=grid_operator_w,
            peak_w=peak_w,
            last=self.last_result,
        )
        notes.extend(energy.notes)
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
            ),
            notes,
        )

    def _limit_in_force_a(
        self, node: int, now: float, grid_operator_w: float, peak_w: float
    ) -> Phases3:
        """A node's tightest limit per phase now: its cap, the limit book's phase and power
        limits, and at the root the grid operator's and the peak target (power as current
        on three phases). A lost meter's node keeps its degraded share of this, not of its
        cap, so a limit below the cap still leaves room."""
        model = self.model
        in_force = self.limits.in_force(model.limit_target(node), now).limit
        power_w = model.power_kw[node] * 1000
        if in_force.power_kw is not None:
            power_w = min(power_w, in_force.power_kw * 1000)
        if node == 0:
            power_w = min(power_w, grid_operator_w, peak_w)
        per_phase = power_w / (3 * model.voltage_v)
        phase = in_force.phase_a or model.caps_a[node]
        return (
            min(model.caps_a[node][0], phase[0], per_phase),
            min(model.caps_a[node][1], phase[1], per_phase),
            min(model.caps_a[node][2], phase[2], per_phase),
        )

    def _apply_limits(
        self, now: float, base: array[float], ev_max: array[float]
    ) -> tuple[float, float]:
        """Fold the limit book into the cycle input; returns (grid-operator W, peak W)."""
        model = self.model
        self.limits.expire(now)
        by_target: dict[str, Limit] = {}
        operator_kw = math.inf
        for lease in self.limits.leases():
            if (
                lease.target == SITE
                and lease.limit.power_kw is not None
                and (
                    lease.source is LimitSource.GRID_OPERATOR
                    or lease.source is self._operator_power_source
                )
            ):
                operator_kw = min(operator_kw, lease.limit.power_kw)
                if lease.limit.phase_a is None:
                    continue
                limit = Limit(lease.limit.phase_a)
            else:
                limit = lease.limit
            previous = by_target.get(lease.target)
            by_target[lease.target] = limit if previous is None else previous.tighten(limit)
        peak_w = math.inf
        for target, limit in by_target.items():
            node = 0 if target == SITE else _node_or_none(self.allocator, target)
            if node is None:
                index = self._connector_index(target)
                if index is not None:
                    ev_max[index] = min(ev_max[index], _connector_cap(limit, model, index))
                continue
            if limit.phase_a is not None:
                for p in range(3):
                    base[3 * node + p] += max(model.caps_a[node][p] - limit.phase_a[p], 0.0)
            if limit.power_kw is not None:
                if node == 0:
                    peak_w = min(peak_w, limit.power_kw * 1000)
                else:
                    cut = max(model.power_kw[node] - limit.power_kw, 0.0) * 1000
                    for p in range(3):
                        base[3 * node + p] += cut / (3 * model.voltage_v)
        margin_w = 3 * model.voltage_v * self.site.grid.safety_margin_a
        return max(operator_kw * 1000 - margin_w, 0.0), peak_w

    def _connector_index(self, target: str) -> int | None:
        charger, _, number = target.rpartition("#")
        if not number.isdigit():
            return None
        try:
            return self.allocator.connector_index((charger, int(number)))
        except KeyError:
            return None

    async def _dispatch(self, result: CycleResult, now: float) -> None:
        setpoints, phases = result.setpoint_a, result.phases
        ops: dict[str, Callable[[], Awaitable[object]]] = {}
        for i, (info, runtime) in enumerate(
            zip(self.model.connectors, self._connectors, strict=True)
        ):
            watch = runtime.watch
            if not watch.reachable(now):
                continue
            charger = self.devices.chargers[info.key]
            setpoint, n_phases = setpoints[i], phases[i]
            if watch.needs_verification:
                ops[info.name] = self._verify_then_set(i, charger, setpoint, n_phases)
            elif (
                runtime.sent_a != setpoint
                or runtime.sent_phases != n_phases
                or info.protocol == "ocpp"
            ):
                ops[info.name] = _setter(charger, setpoint, n_phases)
        battery = self.energy.command_op(now)
        if battery is not None:
            ops[battery[0]] = battery[1]
        deadline = trio.current_time() + self.timing.command_share * self.period_s
        results = await gather_by_deadline(ops, deadline)
        if battery is not None:
            problem = self.energy.commanded(results.pop(battery[0], None), now)
            if problem is not None:
                self._event(EventLevel.WARNING, battery[0], problem)
        index = {info.name: i for i, info in enumerate(self.model.connectors)} if results else {}
        for name, outcome in results.items():
            i = index[name]
            runtime = self._connectors[i]
            if isinstance(outcome, AppliedLimit):
                if runtime.sent_a != setpoints[i]:
                    runtime.sent_at = now
                if outcome.current_a <= setpoints[i] and (
                    runtime.sent_a is None or setpoints[i] < runtime.sent_a
                ):
                    runtime.lowered_at = trio.current_time()
                runtime.sent_a, runtime.sent_phases = setpoints[i], phases[i]
                runtime.watch.commanded(max(outcome.current_a, setpoints[i]))
                runtime.watch.ok(now)
            else:
                runtime.sent_a = None
                log.debug("command to %s failed: %s", name, outcome)

    def _verify_then_set(
        self, index: int, charger: Charger, setpoint: float, phases: int
    ) -> Callable[[], Awaitable[object]]:
        control = self.site.control
        runtime = self._connectors[index]

        async def run() -> AppliedLimit:
            try:
                await charger.configure_failsafe(control.lease_s, control.failsafe_current_a)
            except Exception:
                runtime.failsafe_unverified = True
                raise
            runtime.failsafe_unverified = False
            runtime.watch.verified()
            self._event(EventLevel.INFO, self.model.connectors[index].name, "failsafe verified")
            return await charger.set_limit(setpoint, phases)

        return run

    # -- records -----------------------------------------------------------------------------

    def _record(
        self, cycle: int, now: float, inputs: CycleInputs, result: CycleResult, notes: list[str]
    ) -> None:
        setpoints, reasons = result.setpoint_a, result.reason
        members = _reason_names()
        binding_node, binding_phase = result.binding_node, result.binding_phase
        node_ids = self.model.node_ids
        connectors = []
        for i, info in enumerate(self.model.connectors):
            node = binding_node[i]
            binding = None
            if node >= 0:
                phase = binding_phase[i]
                binding = node_ids[node] + (f"/L{phase + 1}" if phase >= 0 else "")
            connectors.append(
                ConnectorDecision(
                    info.name, setpoints[i], result.phases[i], members[reasons[i]], binding
                )
            )
        self.decisions.append(
            DecisionRecord(
                cycle=cycle,
                at=now,
                inputs={
                    "grid_operator_w": inputs.grid_operator_w,
                    "peak_w": inputs.peak_w,
                    "base_load_a": {
                        node_ids[n]: tuple(inputs.base_load_a[3 * n : 3 * n + 3])  # type: ignore[index]
                        for n in range(len(node_ids))
                    },
                    "energy": self.energy.record(),
                    "balance": self.energy.balance(),
                },
                connectors=tuple(connectors),
                notes=tuple(notes),
            )
        )

    def _publish(self, cycle: int, result: CycleResult, duration_s: float) -> None:
        model = self.model
        now = self.clock()
        setpoints, phases = result.setpoint_a, result.phases
        commanded = [[0.0, 0.0, 0.0] for _ in model.node_ids]
        connectors = []
        record = self.decisions.recent(1)[0].connectors if len(self.decisions) else ()
        for i, (info, runtime) in enumerate(zip(model.connectors, self._connectors, strict=True)):
            on = (info.grid_phases[0],) if info.one_phase or phases[i] == 1 else (0, 1, 2)
            for node in model.ancestors[info.node]:
                for p in on:
                    commanded[node][p] += setpoints[i]
            reading = runtime.reading
            power = reading.get(_POWER) if reading is not None else None
            energy = reading.get(_ENERGY) if reading is not None else None
            connectors.append(
                ConnectorState.model_construct(
                    key=info.name,
                    charger=info.key[0],
                    connector=info.key[1],
                    node=model.node_ids[info.node],
                    protocol=info.protocol,
                    status=_status(runtime, now),
                    setpoint_a=setpoints[i],
                    phases=phases[i],
                    measured_a=reading.phase_currents() if reading is not None else None,
                    power_kw=None if power is None else power / 1000,
                    energy_kwh=None if energy is None else energy / 1000,
                    soc_percent=reading.get(_SOC) if reading is not None else None,
                    priority=self.allocator.priority(i),
                    pv_mode=bool(self.energy.pv_mode[i]),
                    reason=record[i].reason if i < len(record) else "",
                    binding=record[i].binding if i < len(record) else None,
                )
            )
        measured: dict[int, Phases3 | None] = {}
        shares: dict[int, tuple[float, str]] = {}
        for meter_id, watch in self._meter_watch.items():
            node = self._meter_node[meter_id]
            reading = self._meter_reading.get(meter_id)
            measured[node] = reading.signed_phase_currents() if reading is not None else None
            shares[node] = (watch.budget_share(now), watch.health(now).value)
        nodes = []
        for n, node_id in enumerate(model.node_ids):
            in_force = self.limits.in_force(model.limit_target(n), now)
            cap = model.caps_a[n]
            lim = in_force.limit.phase_a
            limit = (
                cap
                if lim is None
                else (min(cap[0], lim[0]), min(cap[1], lim[1]), min(cap[2], lim[2]))
            )
            share, health = shares.get(n, (1.0, None))
            parent = model.parents[n]
            nodes.append(
                NodeState.model_construct(
                    id=node_id,
                    kind=model.node_kinds[n],
                    parent=None if parent is None else model.node_ids[parent],
                    measured_a=measured.get(n),
                    commanded_a=(commanded[n][0], commanded[n][1], commanded[n][2]),
                    limit_a=limit,
                    power_limit_kw=_finite(
                        min(model.power_kw[n], in_force.limit.power_kw or math.inf)
                    ),
                    limit_sources=tuple(s.value for s in in_force.sources),
                    budget_share=share,
                    meter_health=health,
                )
            )
        devices = [self._device_state(name, ok) for name, ok in self._device_health.items()]
        self.hub.publish(
            SiteState.model_construct(
                site=self.site.site.name,
                cycle=cycle,
                at=time.time(),
                cycle_time_ms=duration_s * 1000,
                nodes=tuple(nodes),
                connectors=tuple(connectors),
                devices=tuple(devices),
                events=tuple(self._events),
                energy=self.energy.snapshot(),
            )
        )

    def _device_state(self, name: str, reachable: bool) -> DeviceHealth:
        device = self._by_name.get(name)
        stats = device.link.stats if isinstance(device, ProfileDevice) else None
        p50 = stats.percentile_s(0.5) if stats is not None else None
        p99 = stats.percentile_s(0.99) if stats is not None else None
        return DeviceHealth.model_construct(
            id=name,
            kind=name.partition(":")[0] if ":" in name else "charger",
            protocol=self._protocols.get(name, "modbus"),
            reachable=reachable,
            last_ok_age_s=None,
            requests=stats.requests if stats is not None else 0,
            errors=stats.errors + stats.timeouts + stats.exceptions if stats is not None else 0,
            latency_p50_ms=None if p50 is None else p50 * 1000,
            latency_p99_ms=None if p99 is None else p99 * 1000,
        )

    # -- operator commands (hubgate.api.Commands) --------------------------------------------

    async def set_priority(self, connector: str, priority: int) -> None:
        """Serve `connector` in tier `priority` from the next cycle; its state is kept."""
        index = self._connector_index(connector)
        if index is None:
            raise CommandRejectedError(f"{connector}: no such connector")
        if not 0 <= priority <= PRIORITY_MAX:
            raise CommandRejectedError(
                f"{connector}: priority must be a tier from 0 to {PRIORITY_MAX}, got {priority}"
            )
        before = self.allocator.priority(index)
        self.allocator.set_priority(index, priority)
        self._event(EventLevel.INFO, connector, f"priority {before} -> {priority}")

    async def set_pv_mode(self, connector: str, pv_mode: bool) -> None:
        """Charge a connector from PV surplus only (or from the grid again) from the next cycle."""
        index = self._connector_index(connector)
        if index is None:
            raise CommandRejectedError(f"{connector}: no such connector")
        self.energy.set_pv_mode(index, pv_mode)
        self._event(EventLevel.INFO, connector, "PV mode" if pv_mode else "grid mode")

    async def start_charging(self, connector: str, id_tag: str | None) -> None:
        """Remote start on an OCPP connector."""
        charger = self._ocpp_charger(connector)
        session = charger.station.session
        if session is None:
            raise CommandRejectedError(f"{connector}: the charge point is offline")
        status = await ChargerOperations(session).remote_start(
            id_tag or "hubgate", charger.connector_id
        )
        if status != "Accepted":
            raise CommandRejectedError(f"{connector}: the charge point answered {status}")

    async def stop_charging(self, connector: str) -> None:
        """Remote stop of the connector's transaction."""
        charger = self._ocpp_charger(connector)
        session = charger.station.session
        transaction = charger.station.connector(charger.connector_id).transaction
        if session is None or transaction is None:
            raise CommandRejectedError(f"{connector}: no session to stop")
        status = await ChargerOperations(session).remote_stop(transaction.transaction_id)
        if status != "Accepted":
            raise CommandRejectedError(f"{connector}: the charge point answered {status}")

    def _ocpp_charger(self, connector: str) -> OcppCharger:
        index = self._connector_index(connector)
        charger = None if index is None else self.devices.chargers[self.model.connectors[index].key]
        if not isinstance(charger, OcppCharger):
            raise CommandRejectedError(f"{connector}: start and stop are for OCPP charge points")
        return charger


_POWER = Quantity.POWER_TOTAL
_ENERGY = Quantity.ENERGY_IMPORT
_SOC = Quantity.SOC


def _reason_names() -> tuple[str, ...]:
    return tuple(str(r).rpartition(".")[2] for r in AllocReason.members())


def _setter(charger: Charger, current_a: float, phases: int) -> Callable[[], Awaitable[object]]:
    async def run() -> AppliedLimit:
        return await charger.set_limit(current_a, phases)

    return run


def _grid_draw(reading: Reading, grid_phases: tuple[int, int, int]) -> Phases3:
    draw = [0.0, 0.0, 0.0]
    for terminal, quantity in enumerate((_L1, _L2, _L3)):
        value = reading.values.get(quantity)
        if value is not None and value > 0:
            draw[grid_phases[terminal]] += value
    return (draw[0], draw[1], draw[2])


_L1 = Quantity.CURRENT_L1
_L2 = Quantity.CURRENT_L2
_L3 = Quantity.CURRENT_L3


def _node_or_none(allocator: SiteAllocator, target: str) -> int | None:
    try:
        return allocator.node_index(target)
    except KeyError:
        return None


def _connector_cap(limit: Limit, model: SiteModel, index: int) -> float:
    cap = math.inf
    if limit.phase_a is not None:
        cap = min(limit.phase_a)
    if limit.power_kw is not None:
        phases = 1 if model.connectors[index].one_phase else 3
        cap = min(cap, limit.power_kw * 1000 / (phases * model.voltage_v))
    return cap


def _finite(value: float) -> float | None:
    return None if math.isinf(value) or value >= 1_000_000 else value


def _status(runtime: _ConnectorRuntime, now: float) -> str:
    if not runtime.watch.reachable(now):
        return "Unreachable"
    reading = runtime.reading
    return reading.state.value if reading is not None and reading.state is not None else "Unknown"
