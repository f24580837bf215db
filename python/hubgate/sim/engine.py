"""The simulation: a deterministic fixed-step model of a whole site (sans-IO, no clock).

Each `step()` covers [now, now + step_s): timed events, departures and arrivals,
each EV's draw for the limit its charger offers, base loads, PV and battery,
then the true current of every node, the meters' readings and the recorder.
Who sets the chargers' limits is not its business: a controller in-process, or
a gateway over Modbus and OCPP, writes them between steps.
"""

from __future__ import annotations

import random
from datetime import datetime, time
from zoneinfo import ZoneInfo

from hubgate.config.model import GRID_NODE_ID, PhaseMode
from hubgate.sim.arrivals import ArrivalProcess
from hubgate.sim.battery import BatteryModel
from hubgate.sim.devices import ChargerState, CsmsState, GridSignal, MeterState
from hubgate.sim.electrical import PhaseLimit, SiteTree
from hubgate.sim.ev import Ev
from hubgate.sim.fleet import FleetSummary, VehicleOutcome, fleet_summary, timetable
from hubgate.sim.pv import Cloud, PvModel
from hubgate.sim.recorder import DemandRule, SafetyRecorder
from hubgate.sim.scenario import Event, EventKind
from hubgate.sim.scenario_loader import LoadedScenario
from hubgate.sim.station_personalities import personality
from hubgate.sim.timeline import Timeline

FINISHED_SOC = 1e-3
"""An EV this close below its target state of charge when it leaves has finished."""


class BaseLoadProfile:
    """Non-EV load per node and phase, wandering within ±variation around its level."""

    def __init__(self, tree: SiteTree, loaded: LoadedScenario, rng: random.Random) -> None:
        self._rng = rng
        self._entries = [
            (tree.node_index(b.node), b.amps, b.variation_percent / 100.0)
            for b in loaded.scenario.base_load
        ]
        self._walk = [0.0] * len(self._entries)
        self.flat = [0.0] * (3 * len(tree.node_ids))
        self.step(1.0)

    def step(self, dt: float) -> list[float]:
        """Advance the random walk by `dt`; the base load per node and phase (flat)."""
        flat = [0.0] * len(self.flat)
        for i, (node, amps, variation) in enumerate(self._entries):
            if variation > 0:
                walk = self._walk[i] + self._rng.gauss(0.0, variation * 0.05) * dt**0.5
                self._walk[i] = walk = max(-variation, min(variation, walk))
            else:
                walk = 0.0
            for phase in range(3):
                flat[3 * node + phase] += amps[phase] * (1.0 + walk)
        self.flat = flat
        return flat


class Simulation:
    """A site, its EVs and devices, stepped with a fixed simulated time step."""

    def __init__(self, loaded: LoadedScenario) -> None:
        scenario, site = loaded.scenario, loaded.site
        self.scenario = scenario
        self.site = site
        self.tree = tree = SiteTree.from_config(site)
        self.step_s = scenario.scenario.step_s
        self.steps = 0
        seed = scenario.scenario.seed
        self._arrivals = ArrivalProcess(
            scenario.arrivals, scenario.ev_mix, random.Random(f"{seed}:arrivals")
        )
        self.base_load = BaseLoadProfile(tree, loaded, random.Random(f"{seed}:base-load"))
        self._timeline = Timeline(scenario.events)
        self.evs: list[Ev | None] = [None] * len(tree.connectors)
        fleet = scenario.fleet
        self.vehicles = (
            []
            if fleet is None
            else timetable(
                fleet,
                scenario.ev_mix,
                scenario.scenario.start_hour,
                random.Random(f"{seed}:fleet"),
            )
        )
        """The fleet's timetable (`[fleet]`), by arrival."""
        self.vehicles_by_number = {v.number: v for v in self.vehicles}
        self._next_vehicle = 0
        self._freed_now: set[int] = set()
        """Connectors a vehicle left in this step: no fleet vehicle takes them in it."""
        self.outcomes: list[VehicleOutcome] = []
        """Each fleet vehicle that left (or found no free connector), in order."""
        self.plugged: list[tuple[int, Ev]] = []
        """Fleet vehicles plugged in since the controller last took them: (slot, EV)."""
        """The EV at each connector slot, if any."""
        self._ev_flat: list[tuple[int, ...]] = [()] * len(tree.connectors)
        self.chargers: dict[str, ChargerState] = {}
        self.slot_charger: list[ChargerState] = []
        dc_min_a = {
            (c.id, k.id): k.dc.ac_current_a(k.dc.min_power_kw * 1000, site.grid.voltage_v)
            for c in site.chargers
            for k in c.connectors
            if k.dc is not None
        }
        for slot, wiring in enumerate(tree.connectors):
            charger = self.chargers.get(wiring.charger)
            if charger is None:
                charger = self.chargers[wiring.charger] = ChargerState(
                    wiring.charger,
                    (),
                    site.control.lease_s,
                    site.control.failsafe_current_a,
                    no_free_power=personality(
                        scenario.personalities.get(wiring.charger)
                    ).no_free_power,
                )
            charger.slots = (*charger.slots, slot)
            minimum = dc_min_a.get((wiring.charger, wiring.connector))
            if minimum is not None:
                charger.dc_min_a[slot] = minimum
            self.slot_charger.append(charger)
        self.meters = {m.id: MeterState(m.id, tree.node_index(m.node)) for m in site.meters}
        self.pv = [
            PvModel(
                p.id,
                tree.node_index(p.node),
                p.peak_kw,
                scenario.pv_weather.sunrise_hour,
                scenario.pv_weather.sunset_hour,
                scenario.scenario.start_hour,
            )
            for p in site.pv
        ]
        self.battery = (
            BatteryModel.from_config(
                site.battery, tree.node_index(site.battery.node), scenario.battery.soc_percent
            )
            if site.battery is not None
            else None
        )
        self.grid_signal = GridSignal()
        self.csms = CsmsState()
        self.turned_away = 0
        """Arrivals that found every connector taken."""
        self.currents = [0.0] * (3 * len(tree.node_ids))
        """True current per node and phase (flat) during the last step."""
        grid = site.grid
        self._connection_w = (
            grid.power_limit_kw * 1000.0
            if grid.power_limit_kw is not None
            else 3 * grid.voltage_v * min(grid.phase_current_limit_a)
        )
        self.recorder = SafetyRecorder(
            tree.node_ids,
            self.default_reaction_s(),
            tree.voltage_v,
            power_limits_w=tree.power_limits_w,
            demand=self.demand_rule(),
        )
        for _ in range(self._arrivals.initial_count(len(tree.connectors))):
            self._arrive(0.0)

    @property
    def epoch_s(self) -> float:
        """The wall-clock time (epoch s) at t = 0: the scenario's date and start hour in the
        site's timezone."""
        header = self.scenario.scenario
        midnight = datetime.combine(header.start_date, time(0), ZoneInfo(self.site.site.timezone))
        return midnight.timestamp() + header.start_hour * 3600.0

    @property
    def now(self) -> float:
        """Simulated seconds since the start."""
        return self.steps * self.step_s

    def demand_rule(self) -> DemandRule:
        """The site's demand intervals (aligned as hubgate aligns them: on the epoch) and
        target (`[demand]`; without one, 15-minute intervals and no target)."""
        demand = self.site.demand
        interval_s = 60.0 * (15 if demand is None else demand.interval_min)
        target = None if demand is None or demand.target_kw is None else demand.target_kw * 1e3
        return DemandRule(interval_s, target, self.epoch_s % interval_s)

    def default_reaction_s(self) -> float:
        """Tolerated time above a limit: the scenario's, or slowest EV + control cycle + step."""
        configured = self.scenario.recorder.reaction_s
        if configured is not None:
            return configured
        slowest = max(t.reaction_s[1] for t in self.scenario.ev_mix)
        return slowest + self.site.control.cycle_s + self.step_s

    def limits_in_force(self) -> list[PhaseLimit]:
        """Per-phase limit of every node (the grid operator's limit is on power, `operator_limit_w`)."""
        return list(self.tree.phase_limits)

    def operator_limit_w(self) -> float:
        """The grid operator's limit on the connection's power now (inf at 100 %): its
        percentage of the connection (its power limit, else its weakest phase at the
        nominal voltage), as hubgate reads a control box."""
        percent = self.grid_signal.percent
        if percent >= 100.0:
            return float("inf")
        return percent / 100.0 * self._connection_w

    def export_limit_w(self) -> float:
        """What the site may feed in now (inf: no limit): `grid.export_limit_kw`, and the
        grid operator's feed-in limit in percent of the installed PV power."""
        configured = self.site.grid.export_limit_kw
        limit = float("inf") if configured is None else configured * 1000.0
        percent = self.grid_signal.feed_in_percent
        if percent < 100.0:
            limit = min(limit, percent / 100.0 * sum(pv.peak_kw for pv in self.pv) * 1000.0)
        return limit

    def _arrive(self, now: float) -> None:
        free = [slot for slot, ev in enumerate(self.evs) if ev is None]
        if not free:
            self.turned_away += 1
            return
        self.plug_in(self._arrivals.pick(free), now)

    def plug_in(self, slot: int, now: float, ev: Ev | None = None) -> None:
        """An EV (by default one drawn from the mix) arrives at connector `slot` (free)."""
        if self.evs[slot] is not None:
            raise ValueError(f"connector slot {slot} is taken")
        ev = ev or self._arrivals.new_ev(now)
        self.evs[slot] = ev
        self.slot_charger[slot].sessions.discard(slot)
        node = self.tree.connectors[slot].node
        phases = self.tree.connectors[slot].phases_for(ev.phases)
        self._ev_flat[slot] = tuple(3 * node + p for p in phases)

    def _fleet_arrivals(self, now: float) -> None:
        vehicles = self.vehicles
        while self._next_vehicle < len(vehicles) and vehicles[self._next_vehicle].arrives_at <= now:
            vehicle = vehicles[self._next_vehicle]
            self._next_vehicle += 1
            free = [
                slot
                for slot, ev in enumerate(self.evs)
                if ev is None and slot not in self._freed_now
            ]
            if not free:
                self.turned_away += 1
                self.outcomes.append(VehicleOutcome.of(vehicle, 0.0))
                continue
            slot = self._arrivals.pick(free)
            ev = vehicle.ev()
            self.plug_in(slot, now, ev)
            self.plugged.append((slot, ev))

    def switch_phases(self, slot: int, phases: int) -> None:
        """The charger of a switchable connector switched its EV to `phases` (1 or 3)."""
        ev = self.evs[slot]
        connector = self.tree.connectors[slot]
        if ev is None or connector.mode != PhaseMode.SWITCHABLE:
            return
        on = connector.phases_for(min(ev.phases, phases))
        self._ev_flat[slot] = tuple(3 * connector.node + p for p in on)

    def phases_of(self, slot: int) -> int:
        """How many phases the EV at `slot` draws on (3 without one)."""
        return len(self._ev_flat[slot]) if self.evs[slot] is not None else 3

    def _apply(self, event: Event, starting: bool) -> None:
        if event.kind == EventKind.METER_DIES:
            assert event.meter is not None
            meter = self.meters[event.meter]
            meter.alive = not starting
            meter.currents_a = None
        elif event.kind == EventKind.CHARGER_OFFLINE:
            assert event.charger is not None
            self.chargers[event.charger].online = not starting
        elif event.kind == EventKind.CSMS_DOWN:
            self.csms.online = not starting
        elif event.kind == EventKind.GRID_LIMIT:
            assert event.percent is not None
            self.grid_signal.percent = event.percent if starting else 100.0
        elif event.kind == EventKind.FEED_IN_LIMIT:
            assert event.percent is not None
            self.grid_signal.feed_in_percent = event.percent if starting else 100.0
        elif event.kind == EventKind.CLOUD and starting:
            assert event.depth_percent is not None
            end = event.at_s + event.duration_s if event.duration_s else float("inf")
            cloud = Cloud(event.at_s, end, event.depth_percent / 100.0)
            for pv in self.pv:
                if event.pv is None or pv.id == event.pv:
                    pv.clouds.append(cloud)

    def step(self) -> None:
        """Advance the whole site by one step."""
        now, dt = self.now, self.step_s
        tree = self.tree
        for change in self._timeline.due(now):
            self._apply(change.event, change.starting)
        evs = self.evs
        self._freed_now.clear()
        for slot, ev in enumerate(evs):
            if ev is not None and ev.departs_at <= now:
                self._freed_now.add(slot)
                self.recorder.departed(finished=ev.soc >= ev.target_soc - FINISHED_SOC)
                if ev.vehicle is not None:
                    self.outcomes.append(
                        VehicleOutcome.of(self.vehicles_by_number[ev.vehicle], ev.energy_kwh)
                    )
                evs[slot] = None
                self.slot_charger[slot].sessions.discard(slot)
        for _ in range(self._arrivals.due(now)):
            self._arrive(now)
        self._fleet_arrivals(now)

        own = list(self.base_load.step(dt))
        voltage = tree.voltage_v
        energy = 0.0
        slot_charger, ev_flat = self.slot_charger, self._ev_flat
        for slot, ev in enumerate(evs):
            if ev is None:
                continue
            ev.offer(slot_charger[slot].offered(slot, now), now)
            before = ev.energy_kwh
            draw = ev.step(now, dt, voltage)
            if draw > 0.0:
                energy += ev.energy_kwh - before
                for k in ev_flat[slot]:
                    own[k] += draw
        for pv in self.pv:
            amps = tree.amps_per_phase(pv.step(now))
            for phase in range(3):
                own[3 * pv.node + phase] -= amps
        if self.battery is not None:
            amps = tree.amps_per_phase(self.battery.step(dt))
            for phase in range(3):
                own[3 * self.battery.node + phase] += amps

        self.currents = currents = tree.accumulate(own)
        for meter in self.meters.values():
            if meter.alive:
                at = 3 * meter.node
                meter.currents_a = (currents[at], currents[at + 1], currents[at + 2])
        self.recorder.record(
            now,
            dt,
            currents,
            self.limits_in_force(),
            energy,
            self.operator_limit_w(),
            self.export_limit_w(),
        )
        self.steps += 1

    def fleet_summary(self) -> FleetSummary | None:
        """The fleet's figures so far (None without a `[fleet]`)."""
        if self.scenario.fleet is None:
            return None
        prices = self.scenario.prices
        return fleet_summary(
            self.outcomes,
            self.recorder.grid_power_w,
            self.step_s,
            self.scenario.scenario.start_hour,
            None if prices is None else prices.hourly,
        )

    def node_current(self, node_id: str = GRID_NODE_ID) -> tuple[float, float, float]:
        """True current per grid phase of a node during the last step."""
        at = 3 * self.tree.node_index(node_id)
        return (self.currents[at], self.currents[at + 1], self.currents[at + 2])
