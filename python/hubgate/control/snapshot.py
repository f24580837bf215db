"""What a control cycle leaves behind: its decision record and the site's published state.

`Snapshot` projects the planner's state after a cycle into a `DecisionRecord` (inputs,
what bound each connector, notes) for the decision log and a `SiteState` (nodes, connectors,
devices, events, energy) for the `StateHub`, which the API, the Modbus server and MQTT read.
It also keeps the recent operator events, stamped with the wall clock as they come.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Mapping
from datetime import UTC, datetime

from hubgate.control.allocation import CycleResult
from hubgate.control.deadlines import DeadlineStatus
from hubgate.control.decisions import DecisionLog, DecisionRecord
from hubgate.control.demand import DemandView
from hubgate.control.limits import LimitBook
from hubgate.control.plan import ConnectorRuntime, CyclePlanner, Phases3, Plan
from hubgate.devices.model import Device, DeviceFailsafe, LinkMonitored
from hubgate.profiles.model import Quantity
from hubgate.state import (
    ConnectorState,
    DemandSnapshot,
    DeviceHealth,
    Event,
    EventLevel,
    NodeState,
    SessionView,
    SiteState,
    StateHub,
)

EVENTS_KEPT = 50
"""Operator events in the published state."""


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
    ) -> None:
        """`devices`: every device by its health name (`charger-id#n`, `meter:id`, ...),
        for the link statistics of those that keep them."""
        self.planner = planner
        self.limits = limits
        self.decisions = decisions
        self.hub = hub
        self._links = {
            name: device for name, device in devices.items() if isinstance(device, LinkMonitored)
        }
        self._failsafes = {
            name: device.device_failsafe
            for name, device in devices.items()
            if isinstance(device, DeviceFailsafe)
        }
        model = planner.model
        self._protocols = {info.name: info.protocol for info in model.connectors}
        self.events: deque[Event] = deque(maxlen=EVENTS_KEPT)

    def event(self, level: EventLevel, subject: str, message: str) -> None:
        """An operator event, now."""
        self.events.append(Event(at=time.time(), level=level, subject=subject, message=message))

    def record(self, cycle: int, now: float, plan: Plan) -> None:
        """Append the cycle's decision record."""
        planner, inputs = self.planner, plan.inputs
        node_ids = planner.model.node_ids
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
                connectors=tuple(plan.result.decisions()),
                notes=plan.notes,
            )
        )

    def publish(self, cycle: int, result: CycleResult, duration_s: float, now: float) -> None:
        """Publish the site's state after the cycle."""
        planner = self.planner
        model = planner.model
        setpoints, phases = result.setpoint_a, result.phases
        commanded = [[0.0, 0.0, 0.0] for _ in model.node_ids]
        connectors = []
        record = self.decisions.recent(1)[0].connectors if len(self.decisions) else ()
        for i, (info, runtime) in enumerate(zip(model.connectors, planner.connectors, strict=True)):
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
                    priority=planner.allocator.priority(i),
                    pv_mode=bool(planner.energy.pv_mode[i]),
                    reason=record[i].reason if i < len(record) else "",
                    binding=record[i].binding if i < len(record) else None,
                    session=_session_view(planner.deadlines.status(i, now)),
                )
            )
        measured: dict[int, Phases3 | None] = {}
        shares: dict[int, tuple[float, str]] = {}
        for meter_id, watch in planner.meter_watch.items():
            node = planner.meter_node[meter_id]
            reading = planner.meter_reading.get(meter_id)
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
        devices = [self._device_state(name, ok) for name, ok in planner.device_health.items()]
        self.hub.publish(
            SiteState.model_construct(
                site=planner.site.site.name,
                cycle=cycle,
                at=time.time(),
                cycle_time_ms=duration_s * 1000,
                nodes=tuple(nodes),
                connectors=tuple(connectors),
                devices=tuple(devices),
                events=tuple(self.events),
                energy=planner.energy.snapshot(),
                demand=_demand(planner.demand_view(now)),
            )
        )

    def _device_state(self, name: str, reachable: bool) -> DeviceHealth:
        device = self._links.get(name)
        stats = device.link_stats if device is not None else None
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
            device_failsafe=self._failsafes.get(name),
        )


_POWER = Quantity.POWER_TOTAL
_ENERGY = Quantity.ENERGY_IMPORT
_SOC = Quantity.SOC


def _finite(value: float) -> float | None:
    return None if math.isinf(value) or value >= 1_000_000 else value


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

    return SessionView.model_construct(
        energy_kwh=status.energy_kwh,
        needed_kwh=status.needed_kwh,
        departure=at(status.departure),
        source=None if status.source is None else status.source.value,
        planned_now_kw=status.planned_now_kw,
        laxity_s=status.laxity_s,
        projected_finish=at(status.projected_finish),
        shortfall_kwh=status.shortfall_kwh,
        at_risk=status.shortfall_kwh > 0,
    )


def _demand(view: DemandView | None) -> DemandSnapshot | None:
    """The demand figures for the published state."""
    if view is None:
        return None
    return DemandSnapshot.model_construct(
        interval_start=datetime.fromtimestamp(view.interval_start, UTC),
        interval_min=view.interval_s / 60,
        average_kw=view.average_kw,
        projection_kw=view.projection_kw,
        target_kw=view.target_kw,
        month_peak_kw=view.month_peak_kw,
        cap_kw=view.cap_kw,
    )
