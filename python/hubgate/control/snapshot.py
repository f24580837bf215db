"""What a control cycle leaves behind: its decision record and the site's published state.

`Snapshot` projects the planner's state after a cycle into a `DecisionRecord` (inputs,
what bound each connector, notes) for the decision log and a `SiteState` (nodes, connectors,
devices, events, energy) for the `StateHub`, which the API, the Modbus server and MQTT read.
It also keeps the recent operator events, stamped with the wall clock as they come.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import NamedTuple

from hubgate.control.allocation import CycleResult
from hubgate.control.connector_runtime import ConnectorRuntime
from hubgate.control.deadlines import DeadlineStatus
from hubgate.control.decisions import (
    ConnectorDecision,
    DecisionLog,
    DecisionRecord,
    GridSample,
    Phases3,
)
from hubgate.control.demand import DemandView
from hubgate.control.limit_in_force import CAP, PEAK_TARGET, NodeLimit
from hubgate.control.limits import LimitBook
from hubgate.control.plan import CyclePlanner, Plan
from hubgate.devices.model import (
    ChargingTransaction,
    Device,
    DeviceFailsafe,
    LinkMonitored,
    MessageMonitored,
    Sampled,
    TransactionReporting,
)
from hubgate.profiles.model import Quantity
from hubgate.records.events import EventLog
from hubgate.records.sessions import SessionRecorder
from hubgate.state import (
    ConnectorState,
    DemandSnapshot,
    DeviceHealth,
    EnergyState,
    Event,
    EventCategory,
    EventLevel,
    LimitBoundView,
    NodeState,
    SessionView,
    SiteState,
    StateHub,
)
from hubgate.trusted import trusted

BATTERY_MODE_HELD_S = 10.0
"""A battery mode is an event once it has held this long (no event for every flicker)."""

SESSIONS_EVERY_S = 1.0
"""The charging-session records sample each connector with a session open this often (every
cycle of a cycle this long or longer; in shorter cycles a share of them in turn, see
`Snapshot._due_groups`), and a connector at once when its status or transaction changes."""


class Snapshot:
    """Decision records and published states of one site's cycles (see the module docstring)."""

    def __init__(
        self,
        planner: CyclePlanner,
        *,
        limits: LimitBook,
        decisions: DecisionLog,
        hub: StateHub,
        devices: Mapping[str, Device],
        events: EventLog,
        sessions: SessionRecorder | None = None,
    ) -> None:
        """`devices`: every device by its health name (`charger-id#n`, `meter:id`, ...),
        for the link statistics of those that keep them; `events`: the operator's log."""
        self.planner = planner
        self.limits = limits
        self.decisions = decisions
        self.hub = hub
        self.events = events
        self.sessions = sessions
        """Where each cycle's connectors go to make the charging-session records."""
        self._transactions = {
            name: device
            for name, device in devices.items()
            if isinstance(device, TransactionReporting)
        }
        self._links = {
            name: device for name, device in devices.items() if isinstance(device, LinkMonitored)
        }
        self._failsafes = {
            name: device.device_failsafe
            for name, device in devices.items()
            if isinstance(device, DeviceFailsafe)
        }
        self._messages = {
            name: device.messages
            for name, device in devices.items()
            if isinstance(device, MessageMonitored)
        }
        model = planner.model
        self._protocols = {info.name: info.protocol for info in model.connectors}
        self._names = [info.name for info in model.connectors]
        meter_stale_s = planner.site.control.meter_stale_s
        self._stale_after_s = [
            device.stale_after_s
            if isinstance(device := devices.get(info.name), Sampled)
            else max(meter_stale_s, runtime.watch.unreachable_after_s)
            for info, runtime in zip(model.connectors, planner.connectors, strict=True)
        ]
        """Per connector: how old its reading may be before it is shown as stale."""
        self._battery_mode: tuple[str | None, str | None, float] = (None, None, 0.0)
        """(mode reported, mode seen, seen since)."""
        self._wall, self._now = time.time(), 0.0
        self._limits: list[NodeLimit] = []
        self._commanded: list[Phases3] = []
        self._measured: dict[int, _Metered] = {}
        self._sessions_at: tuple[float, float] | None = None
        """The first and the last cycle's start (the loop's clock) that sampled sessions."""
        self._marks: list[tuple[str, ChargingTransaction | None]] = []
        """What the session records last saw of each connector (`_session_marks`)."""
        self._published: tuple[int, CycleResult, float] | None = None
        """The last published cycle, its result and duration (`status`)."""

    def record(self, cycle: int, now: float, plan: Plan) -> None:
        """Append the cycle's decision record (with the grid connection's sample)."""
        planner, inputs, result = self.planner, plan.inputs, plan.result
        model = planner.model
        self._wall, self._now = time.time(), now
        self._limits = [planner.node_limit(n, now) for n in range(len(model.node_ids))]
        self._commanded = _commanded(planner, result)
        self._measured = self._meters(now)
        node_ids = model.node_ids
        root = self._limits[0]
        measured = self._measured.get(0)
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
                    "energy": planner.energy.record(),
                    "balance": planner.energy.balance(),
                },
                connectors=plan.result.decisions(),
                notes=plan.notes,
                grid=GridSample(
                    wall_time=self._wall,
                    measured_a=None if measured is None else measured.currents,
                    commanded_a=self._commanded[0],
                    limit_a=root.phase_a,
                    limit_kw=root.power_kw,
                    source=root.source,
                ),
            )
        )

    def publish(self, cycle: int, result: CycleResult, duration_s: float, now: float) -> None:
        """Publish the site's state after the cycle (`record` ran first), built when
        something reads it (`StateHub.publish`: a cycle nobody reads costs no models);
        hand the session records each connector whose status or transaction changed, and
        about every `SESSIONS_EVERY_S` those with a session open; log the events due."""
        energy_state = self.planner.energy.snapshot()
        self._battery_events(None if energy_state is None else energy_state.battery_mode, now)
        self.events.tick()
        if self.sessions is not None:
            self._sample_sessions(self.sessions, result, now)
        self._published = (cycle, result, duration_s)
        self.hub.publish(
            partial(
                self._site_state,
                cycle,
                result,
                duration_s,
                now,
                energy_state,
                self.events.recent,
                time.time(),
            )
        )

    def _sample_sessions(self, sessions: SessionRecorder, result: CycleResult, now: float) -> None:
        """Hand `sessions` the connectors whose status or transaction changed since the
        last cycle, and those with a session open whose turn it is (each every
        `SESSIONS_EVERY_S`, `_due_groups`; one not open whose status is as before has none
        to start: it was sampled unplugged)."""
        transactions = {name: d.transaction() for name, d in self._transactions.items()}
        marks, before = self._session_marks(transactions, now), self._marks
        due = self._due_groups(self._now)
        groups, names = len(due), self._names
        changed = [
            i
            for i, mark in enumerate(marks)
            if i >= len(before)
            or mark != before[i]
            or (due[i % groups] and sessions.is_open(names[i]))
        ]
        self._marks = marks
        if changed:
            decisions = result.decisions()
            samples = [self._sample(i, decisions[i], now) for i in changed]
            sessions.observe(samples, transactions, self._wall)

    def _due_groups(self, start: float) -> list[bool]:
        """Per group of connectors (the one at `i` in group `i % groups`, one group per
        cycle in `SESSIONS_EVERY_S`): whether its sessions are due in the cycle that began
        at `start`. Group `g` is due at `g` cycles after the first cycle's start and every
        `SESSIONS_EVERY_S` after, in the cycle whose start passed that (half a cycle early
        counts), so no cycle samples them all (at depot-500 in 0.1 s cycles, 500 samples
        in one cycle of ten made its spike) and a late cycle shifts no group's turn."""
        cycle_s = self.planner.site.control.cycle_s
        groups = max(1, round(SESSIONS_EVERY_S / cycle_s))
        if self._sessions_at is None:
            self._sessions_at = (start, start)
            return [True] * groups
        first, last = self._sessions_at
        self._sessions_at = (first, start)
        now, before = start - first + cycle_s / 2, last - first + cycle_s / 2
        return [
            (now - g * cycle_s) // SESSIONS_EVERY_S > (before - g * cycle_s) // SESSIONS_EVERY_S
            for g in range(groups)
        ]

    def _site_state(
        self,
        cycle: int,
        result: CycleResult,
        duration_s: float,
        now: float,
        energy: EnergyState | None,
        events: tuple[Event, ...],
        at: float,
    ) -> SiteState:
        """The state `publish` published, as the loop knows it now (built on the first read:
        the readings may be a cycle newer than the setpoints, reasons and limits)."""
        planner = self.planner
        nodes = [self._node_state(n) for n in range(len(planner.model.node_ids))]
        devices = [
            self._device_state(name, ok, now) for name, ok in planner.devices.answered.items()
        ]
        return trusted(
            SiteState,
            site=planner.site.site.name,
            cycle=cycle,
            at=at,
            cycle_time_ms=duration_s * 1000,
            nodes=tuple(nodes),
            connectors=self._connectors(result, now),
            devices=tuple(devices),
            events=events,
            energy=energy,
            demand=_demand(planner.horizon.demand_view(now)),
        )

    def _node_state(self, n: int) -> NodeState:
        """The node at `n` after the last recorded cycle."""
        model = self.planner.model
        limit = self._limits[n]
        meter = self._measured.get(n)
        parent = model.parents[n]
        return trusted(
            NodeState,
            id=model.node_ids[n],
            kind=model.node_kinds[n],
            parent=None if parent is None else model.node_ids[parent],
            measured_a=None if meter is None else meter.currents,
            measured_age_s=None if meter is None else meter.age_s,
            commanded_a=self._commanded[n],
            limit_a=None if limit.unlimited else limit.phase_a,
            power_limit_kw=None if limit.unlimited else limit.power_kw,
            limit_source=None if limit.unlimited else limit.source,
            limit_expires_at=self._wall_time(limit.expires_at),
            limit_sources=tuple(
                b.source for b in limit.bounds if b.source not in (CAP, PEAK_TARGET)
            ),
            limit_bounds=tuple(
                trusted(
                    LimitBoundView,
                    source=b.source,
                    phase_a=b.phase_a,
                    power_kw=b.power_kw,
                    expires_at=self._wall_time(b.expires_at),
                    origin=b.origin,
                )
                for b in limit.bounds
                if b.phase_a is not None or b.power_kw is not None
            ),
            budget_share=1.0 if meter is None else meter.share,
            meter_health=None if meter is None else meter.health,
        )

    def status(self) -> SiteStatus | None:
        """The last published cycle in brief, None before the first: its grid node, how
        many connectors have a setpoint and devices answered, without the whole
        `SiteState` (about 10 ms on the 200-connector depot)."""
        published = self._published
        if published is None:
            return None
        cycle, result, duration_s = published
        answered = self.planner.devices.answered.values()
        return SiteStatus(
            cycle=cycle,
            cycle_time_ms=duration_s * 1000,
            grid=self._node_state(0),
            charging=sum(1 for a in result.setpoint_a if a > 0),
            reachable=sum(answered),
            devices=len(answered),
        )

    def _sample(self, i: int, decision: ConnectorDecision, now: float) -> _Sample:
        """The connector at `i` after the cycle that decided `decision` for it, as the
        session records read it (and the published state shows it)."""
        runtime = self.planner.connectors[i]
        reading = runtime.reading
        power = reading.get(_POWER) if reading is not None else None
        energy = reading.get(_ENERGY) if reading is not None else None
        age = None if reading is None else max(now - reading.at, 0.0)
        reachable = runtime.watch.reachable(now)
        return _Sample(
            key=decision.connector,
            status=_status(runtime, now),
            setpoint_a=decision.setpoint_a,
            measured_a=reading.phase_currents() if reading is not None else None,
            power_kw=None if power is None else power / 1000,
            energy_kwh=None if energy is None else energy / 1000,
            stale=not reachable or age is None or age > self._stale_after_s[i],
            reason=decision.reason if reachable else "UNREACHABLE",
            binding=decision.binding,
            age_s=age,
            reachable=reachable,
        )

    def _connectors(self, result: CycleResult, now: float) -> tuple[ConnectorState, ...]:
        """Every connector's state after the cycle that planned `result`."""
        planner = self.planner
        model = planner.model
        phases, decisions = result.phases, result.decisions()
        connectors = []
        for i, (info, runtime) in enumerate(zip(model.connectors, planner.connectors, strict=True)):
            sample = self._sample(i, decisions[i], now)
            reading = runtime.reading
            reservation = planner.verification.reservation(i, now)
            connectors.append(
                trusted(
                    ConnectorState,
                    key=info.name,
                    charger=info.key[0],
                    connector=info.key[1],
                    node=model.node_ids[info.node],
                    protocol=info.protocol,
                    status=sample.status,
                    setpoint_a=sample.setpoint_a,
                    phases=phases[i],
                    measured_a=sample.measured_a,
                    power_kw=sample.power_kw,
                    energy_kwh=sample.energy_kwh,
                    soc_percent=reading.get(_SOC) if reading is not None else None,
                    measured_age_s=sample.age_s,
                    stale=sample.stale,
                    unreachable_since=None
                    if sample.reachable
                    else self._wall_time(runtime.watch.last_ok_at),
                    reserved_a=None if reservation is None else reservation[0],
                    priority=planner.allocator.priority(i),
                    pv_mode=bool(planner.energy.pv_mode[i]),
                    reason=sample.reason,
                    binding=sample.binding,
                    session=_session_view(planner.horizon.deadlines.status(i, now)),
                )
            )
        return tuple(connectors)

    def _session_marks(
        self, transactions: Mapping[str, ChargingTransaction | None], now: float
    ) -> list[tuple[str, ChargingTransaction | None]]:
        """Per connector, what starts, continues or ends its charging session: its status
        and its transaction (a change is handed to the session records at once)."""
        planner = self.planner
        return [
            (_status(runtime, now), transactions.get(info.name))
            for info, runtime in zip(planner.model.connectors, planner.connectors, strict=True)
        ]

    def _battery_events(self, mode: str | None, now: float) -> None:
        """The battery's mode, once it has held `BATTERY_MODE_HELD_S`, when it changed."""
        reported, seen, since = self._battery_mode
        if mode != seen:
            self._battery_mode = (reported, mode, now)
            return
        if mode == reported or now - since < BATTERY_MODE_HELD_S:
            return
        self._battery_mode = (mode, mode, since)
        if reported is not None and mode is not None:
            battery = self.planner.site.battery
            self.events.emit(
                EventLevel.INFO,
                "battery" if battery is None else f"battery:{battery.id}",
                f"mode {reported} -> {mode}",
                category=EventCategory.BATTERY,
            )

    def _wall_time(self, monotonic: float | None) -> float | None:
        return None if monotonic is None else self._wall + (monotonic - self._now)

    def _meters(self, now: float) -> dict[int, _Metered]:
        """Per metered node: its signed currents, their age, budget share and meter health."""
        planner = self.planner
        metered: dict[int, _Metered] = {}
        for meter_id, watch in planner.meter_watch.items():
            node = planner.meter_node[meter_id]
            reading = planner.meter_reading.get(meter_id)
            metered[node] = _Metered(
                reading.signed_phase_currents() if reading is not None else None,
                None if reading is None else max(now - reading.at, 0.0),
                watch.budget_share(now),
                watch.health(now).value,
            )
        return metered

    def _device_state(self, name: str, reachable: bool, now: float) -> DeviceHealth:
        device = self._links.get(name)
        stats = device.link_stats if device is not None else None
        p50 = stats.percentile_s(0.5) if stats is not None else None
        p99 = stats.percentile_s(0.99) if stats is not None else None
        ok_at = self.planner.devices.ok_at.get(name)
        messages = self._messages.get(name)
        last_message = None if messages is None else messages.last_message_at
        return trusted(
            DeviceHealth,
            id=name,
            kind=name.partition(":")[0] if ":" in name else "charger",
            protocol=self._protocols.get(name, "modbus"),
            reachable=reachable,
            last_ok_age_s=None if ok_at is None else max(now - ok_at, 0.0),
            requests=stats.requests if stats is not None else 0,
            errors=stats.errors + stats.timeouts + stats.exceptions if stats is not None else 0,
            rejected=stats.exceptions if stats is not None else 0,
            timeouts=stats.timeouts if stats is not None else 0,
            latency_p50_ms=None if p50 is None else p50 * 1000,
            latency_p99_ms=None if p99 is None else p99 * 1000,
            last_message_age_s=None if last_message is None else max(now - last_message, 0.0),
            messages_per_min=None if messages is None else messages.per_minute(now),
            device_failsafe=self._failsafes.get(name),
        )


@dataclass(frozen=True, slots=True)
class SiteStatus:
    """The last published cycle in brief (`Snapshot.status`)."""

    cycle: int
    cycle_time_ms: float
    grid: NodeState
    charging: int
    """Connectors with a setpoint above 0 A."""
    reachable: int
    """Devices that answered in the cycle, of `devices`."""
    devices: int


@dataclass(frozen=True, slots=True)
class _Metered:
    currents: Phases3 | None
    age_s: float | None
    share: float
    health: str


def _commanded(planner: CyclePlanner, result: CycleResult) -> list[Phases3]:
    """Per node: the sum of the setpoints below it on each grid phase (a one-phase EV at a
    three-phase connector on its phase alone; the Rust core's `ConnectorPaths.sum_setpoints`)."""
    sums = planner.model.paths.sum_setpoints(
        result.setpoint_a, result.phases, planner.allocator.alone_on
    )
    return [(sums[n], sums[n + 1], sums[n + 2]) for n in range(0, len(sums), 3)]


_POWER = Quantity.POWER_TOTAL
_ENERGY = Quantity.ENERGY_IMPORT
_SOC = Quantity.SOC


class _Sample(NamedTuple):
    """A connector after a cycle, without a model: what the session records read
    (`records.sessions.ConnectorSample`) and what the published state is made of (a
    tuple: made three times faster than a frozen dataclass, for every connector with a
    session open each second)."""

    key: str
    status: str
    setpoint_a: float
    measured_a: Phases3 | None
    power_kw: float | None
    energy_kwh: float | None
    stale: bool
    reason: str
    binding: str | None
    age_s: float | None
    reachable: bool


def _status(runtime: ConnectorRuntime, now: float) -> str:
    if not runtime.watch.reachable(now):
        return "Unreachable"
    reading = runtime.reading
    return reading.state.value if reading is not None and reading.state is not None else "Unknown"


def _session_view(status: DeadlineStatus) -> SessionView | None:
    """The connector's session for the published state; None when it has none."""
    if status.needed_kwh is None and status.energy_kwh == 0:
        return None

    def at(epoch: float | None) -> datetime | None:
        return None if epoch is None else datetime.fromtimestamp(epoch, UTC)

    return trusted(
        SessionView,
        energy_kwh=status.energy_kwh,
        needed_kwh=status.needed_kwh,
        departure=at(status.departure),
        source=None if status.source is None else status.source.value,
        planned_now_kw=status.planned_now_kw,
        laxity_s=status.laxity_s,
        projected_finish=at(status.projected_finish),
        shortfall_kwh=status.shortfall_kwh,
        at_risk=status.shortfall_kwh > 0,
        ev_max_a=status.ev_max_a,
    )


def _demand(view: DemandView | None) -> DemandSnapshot | None:
    """The demand figures for the published state."""
    if view is None:
        return None
    return trusted(
        DemandSnapshot,
        interval_start=datetime.fromtimestamp(view.interval_start, UTC),
        interval_min=view.interval_s / 60,
        average_kw=view.average_kw,
        projection_kw=view.projection_kw,
        target_kw=view.target_kw,
        month_peak_kw=view.month_peak_kw,
        cap_kw=view.cap_kw,
    )
