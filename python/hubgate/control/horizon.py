"""What time brings to a control cycle, sans-IO: deadlines, schedules, prices and demand.

`Horizon` is the part of `control.plan.CyclePlanner` that looks ahead on the wall clock:
the sessions' energy needs and departures (`SessionDeadlines`), the time-based limits
(`ScheduleBook`, leases in the limit book), the energy prices (`PriceSeries`) and the
demand charge's metering interval (`DemandCharge`). Each cycle the planner asks it for
the schedules' leases, the demand cap and the sessions' floors; the API, the loop and
the snapshot reach its parts through `planner.horizon`.

Times: `now` is the control loop's clock; wall-clock times (departures, schedules, the
metering interval) are `now + deadlines.wall_offset_s`, which the loop sets at its first
cycle.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Mapping, Sequence
from functools import partial

from hubgate.config.model import SiteConfig
from hubgate.control.connector_runtime import EV_HEADROOM_A, WANTING_STATES, ConnectorRuntime
from hubgate.control.deadlines import (
    SLOT_S,
    DeadlineInputs,
    NeedSource,
    SessionDeadlines,
    session_defaults,
)
from hubgate.control.demand import DEMAND_LAG_CYCLES, DemandCharge, DemandState, DemandView
from hubgate.control.limit_in_force import Bound, node_bounds, shared_caps
from hubgate.control.limits import LimitBook, LimitSource
from hubgate.control.prices import PriceSeries
from hubgate.control.schedules import ScheduleBook
from hubgate.control.site_model import SiteModel
from hubgate.devices.model import ChargingNeeds
from hubgate.profiles.model import Quantity
from hubgate.records.events import EventLog
from hubgate.state import EventLevel


class Horizon:
    """Deadlines, schedules, prices and demand charges (see the module docstring)."""

    def __init__(
        self,
        site: SiteConfig,
        model: SiteModel,
        limits: LimitBook,
        events: EventLog,
        *,
        operator_sources: frozenset[LimitSource],
        demand: DemandState | None = None,
    ) -> None:
        """`operator_sources`: the lease sources that are the grid operator's power limit;
        `demand`: the demand state saved before a restart."""
        self.site, self.model, self.limits, self.events = site, model, limits, events
        self._operator_sources = operator_sources
        self._index = {info.name: i for i, info in enumerate(model.connectors)}
        per_connector, per_token = session_defaults(site, model.connectors)
        self.deadlines = SessionDeadlines(
            model.connectors,
            model.voltage_v,
            defaults=per_connector,
            tokens=per_token,
            timezone=site.site.timezone,
            policy=site.deadlines,
        )
        self.schedules = ScheduleBook.of_site(site)
        """Time-based limits (`[[schedules]]` and the API's), leases in `limits`."""
        self.prices = PriceSeries()
        """Energy prices (`PUT /api/v1/prices`): sessions with slack wait for cheap slots."""
        self.demand = (
            DemandCharge(
                site.demand.interval_min * 60, site.demand.target_kw, site.site.timezone, demand
            )
            if site.demand is not None
            else None
        )
        """Demand charges (`[demand]`), from the state saved before a restart (`demand`)."""
        self._demand_cap_w: float | None = None
        """The demand cap the last cycle applied (`demand_cap_w`)."""
        self._needs_seen: dict[str, ChargingNeeds] = {}
        self._phases = [1 if info.one_phase else 3 for info in model.connectors]
        """The phase count each connector draws on (fixed with the site)."""

    def wall(self, now: float) -> float:
        """The wall-clock time (epoch s) at the loop's `now`."""
        return now + (self.deadlines.wall_offset_s or 0.0)

    def apply_schedules(self, now: float) -> None:
        """Make the schedules in force now leases in the limit book."""
        self.schedules.apply(self.limits, now, self.wall(now))

    def charging_needs(
        self,
        reports: Mapping[str, ChargingNeeds | None],
        tokens: Mapping[str, str | None],
        now: float,
    ) -> None:
        """Take the sessions' id tokens and the EVs' reported needs by connector name: a
        token with a default need in the site file gets it; a new report with an energy and
        a departure becomes its session's need (an event says so)."""
        for name, token in tokens.items():
            if token is not None:
                self.deadlines.identify(self._index[name], token, now)
        for name, needs in reports.items():
            if needs is None or needs is self._needs_seen.get(name):
                continue
            self._needs_seen[name] = needs
            if needs.energy_wh is None or needs.departure is None:
                continue
            most = math.inf if needs.max_current_a is None else needs.max_current_a
            index, departure = self._index[name], needs.departure.timestamp()
            self.deadlines.set_need(index, needs.energy_wh, departure, NeedSource.OCPP, most)
            self.events.emit(
                EventLevel.INFO,
                name,
                f"EV needs {needs.energy_wh / 1000:g} kWh by {needs.departure.isoformat()}",
            )

    def demand_cap_w(
        self,
        now: float,
        grid_import_w: float | None,
        base: array[float],
        connectors: Sequence[ConnectorRuntime],
        offer: tuple[array[float], array[int]],
        notes: list[str],
    ) -> float:
        """Count the connection's import into the metering interval (the grid meter's
        `grid_import_w`, else the root's base plus the EVs' draw) and the cap that keeps
        the interval at its target (infinity without `[demand]` or a target yet), levelled
        over the sessions that leave before the interval ends. `offer`: each connector's
        EV maximum (A per phase) and whether it wants to charge."""
        if self.demand is None:
            return math.inf
        wall = self.wall(now)
        voltage = self.model.voltage_v
        metered = grid_import_w
        if metered is None:
            drawn = sum(sum(runtime.draw) for runtime in connectors)
            metered = (sum(base[0:3]) + drawn) * voltage
        self.demand.sample(wall, metered)
        most_w = sum(base[0:3]) * voltage
        leaving = []
        for i, (info, ev_max, wanting) in enumerate(
            zip(self.model.connectors, *offer, strict=True)
        ):
            if not wanting:
                continue
            watts = min(ev_max, info.max_current_a) * (1 if info.one_phase else 3) * voltage
            most_w += watts
            departure = self.deadlines.departure(i)
            if departure is not None:
                leaving.append((departure, watts))
        lag_s = DEMAND_LAG_CYCLES * self.site.control.cycle_s
        cap = self._demand_cap_w = self.demand.cap_w(wall, lag_s, most_w, leaving)
        if math.isfinite(cap):
            target = self.demand.target_w() / 1000
            notes.append(
                f"demand: {cap / 1000:.1f} kW for the rest of the interval (target {target:g} kW)"
            )
        return cap

    def demand_view(self, now: float) -> DemandView | None:
        """The demand figures now, with the cap the last cycle applied (None without
        `[demand]`)."""
        if self.demand is None:
            return None
        return self.demand.view(self.wall(now), self._demand_cap_w)

    def deadline_inputs(
        self,
        now: float,
        base: array[float],
        lease_cut: array[float],
        connectors: Sequence[ConnectorRuntime],
    ) -> DeadlineInputs:
        """Track each session's energy and plan the ones with a departure over the power
        they may share in each slot (`_caps_ahead`), at the root and at each node below
        with a schedule. `base`: each node's base load per phase, of which `lease_cut` is
        the headroom its leases take (`fold_leases`); the plan takes the leases from the
        limits themselves."""
        model, voltage = self.model, self.model.voltage_v
        observe, unplugged = self.deadlines.observe, self.deadlines.unplugged
        for i, runtime in enumerate(connectors):
            reading = runtime.reading
            if reading is None or (
                reading.state not in WANTING_STATES
                and (reading.state is not None or max(runtime.draw) <= 1)
            ):
                unplugged(i)  # (most idle connectors: nothing else to look at)
                continue
            values = reading.values
            ev_a = runtime.ev_limit_a - EV_HEADROOM_A  # what it drew when it took less
            session_wh, soc = values.get(_SESSION_ENERGY), values.get(_SOC)
            observe(i, True, sum(runtime.draw) * voltage, session_wh, now, ev_a, soc)
        phases = self._phases
        own = array("d", (b - cut for b, cut in zip(base, lease_cut, strict=True)))
        groups = [
            (
                [
                    i
                    for i, info in enumerate(model.connectors)
                    if node in model.ancestors[info.node]
                ],
                partial(self._caps_ahead, now, own, node),
            )
            for node in self._scheduled_nodes()
        ]
        caps = partial(self._caps_ahead, now, own, 0)
        return self.deadlines.plan(now, caps, phases, self.prices, groups)

    def bounds(self, node: int, now: float) -> tuple[Bound, ...]:
        """Every limit on `node` now (`node_bounds`: at the root the grid operator's and the
        peak target too)."""
        return node_bounds(
            self.model,
            self.limits,
            node,
            now,
            operator_sources=self._operator_sources,
            peak_target_kw=self.site.grid.peak_target_kw,
        )

    def _scheduled_nodes(self) -> list[int]:
        """The nodes below the root that a schedule limits."""
        index = {node_id: i for i, node_id in enumerate(self.model.node_ids)}
        return sorted(index[t] for t in self.schedules.targets() if index.get(t, 0) > 0)

    def _caps_ahead(
        self,
        now: float,
        base: array[float],
        node: int,
        starts: Sequence[float],
        ends: Sequence[float],
    ) -> list[float]:
        """Per planning slot, the power the sessions below `node` may share (`shared_caps`),
        under its limits and schedules, at the root also the demand cap (this interval's,
        then the target); `base`: each node's base load without its leases' cut."""
        demand = self.demand if node == 0 else None
        interval_end = starts[0] - starts[0] % SLOT_S + SLOT_S
        return shared_caps(
            self.bounds(node, now),
            self.schedules.limits_ahead(self.model.limit_target(node), starts, ends),
            self.model.voltage_v,
            (base[3 * node], base[3 * node + 1], base[3 * node + 2]),
            (math.inf, math.inf)
            if demand is None
            else (demand.cap_w(self.wall(now)), demand.target_w()),
            sum(1 for start in starts if start < interval_end),
        )


_SESSION_ENERGY = Quantity.SESSION_ENERGY
_SOC = Quantity.SOC
