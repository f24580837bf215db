"""hubgate's own control loop on the simulated site: one process, simulated time, no sockets.

    sim = Simulation(loaded)
    trio.run(run_hubgate, sim, 600.0, clock=trio.testing.MockClock(autojump_threshold=0))

The `ControlLoop` is the one `hubgate run` builds, with its allocator, battery and PV
policy, failsafe watches and limit book; only its devices are in-process adapters that
read and write the simulation's state: a charger connector (its EV's draw and state in,
the charger's limit out, the charger's lease renewed by the loop's heartbeats), a meter,
the battery, every PV inverter and the grid operator's box. A device the scenario takes
offline (a charger, a dead meter) raises like an unreachable one.

Time is Trio's clock, a `MockClock` that starts at 0 with the simulation and jumps ahead
whenever every task waits: the loop's cycles fall on whole periods and take no simulated
time, and the physics is stepped half a step later, so every cycle sees the step before
it and nothing depends on which task Trio runs first.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime

import trio

from hubgate.config.model import GridOperatorSource
from hubgate.control.decisions import DecisionLog
from hubgate.control.grid_operator import connection_kw, heartbeat_timeout_s
from hubgate.control.limits import (
    SITE,
    Limit,
    LimitBook,
    LimitSource,
    connector_target,
    grid_operator_limit_kw,
)
from hubgate.control.loop import ControlLoop
from hubgate.control.sensors import SiteDevices
from hubgate.devices.errors import DeviceError
from hubgate.devices.model import (
    NOT_CHECKED,
    AppliedLimit,
    BatteryCommandResult,
    LimitCheck,
    Reading,
)
from hubgate.profiles.loader import load_named
from hubgate.profiles.model import Failsafe, IecState, Profile, Quantity
from hubgate.sim.battery import BatteryModel
from hubgate.sim.devices import ChargerState, MeterState
from hubgate.sim.engine import Simulation
from hubgate.sim.pv import PvModel
from hubgate.state import StateHub

_BOX_SOURCES = (GridOperatorSource.MODBUS_DEVICE, GridOperatorSource.RELAY_CONTACTS)
"""Grid-operator sources read from a device; the others write leases (`_write_signal`)."""

_CURRENTS = (Quantity.CURRENT_L1, Quantity.CURRENT_L2, Quantity.CURRENT_L3)
_POWERS = (Quantity.POWER_L1, Quantity.POWER_L2, Quantity.POWER_L3)


class ConnectorAdapter:
    """One connector of a simulated charger, as the control loop's `Charger`."""

    def __init__(self, sim: Simulation, slot: int, failsafe: Failsafe | None = None) -> None:
        """`failsafe`: a Modbus charger's, from its profile (None: it takes any)."""
        self._sim = sim
        self._slot = slot
        wiring = sim.tree.connectors[slot]
        self._charger: ChargerState = sim.slot_charger[slot]
        self._failsafe = failsafe
        self.id = f"{wiring.charger}#{wiring.connector}"

    def fixed_failsafe_a(self, failsafe_current_a: float) -> float | None:
        """What its profile's device falls back to whatever it is told (`FixedFailsafe`)."""
        failsafe = self._failsafe
        return None if failsafe is None else failsafe.fixed_current_a(failsafe_current_a)

    def _online(self) -> ChargerState:
        if not self._charger.online:
            raise DeviceError(f"{self.id}: the simulated charger is offline")
        return self._charger

    @property
    def heartbeat_period_s(self) -> float:
        """Half the charger's lease: its watchdog never runs out while the loop lives."""
        return self._charger.lease_s / 2

    @property
    def limit_check(self) -> LimitCheck:
        """Not checked: the simulated charger offers what it is sent."""
        return NOT_CHECKED

    async def read(self) -> Reading:
        """The EV's draw on the charger's own phases and the IEC state (F: an EV whose
        session has not started, as a station that shows itself unavailable)."""
        charger = self._online()
        sim, slot = self._sim, self._slot
        ev = sim.evs[slot]
        if ev is not None and not charger.in_session(slot):
            return Reading(at=trio.current_time(), values={}, state=IecState.F)
        voltage = sim.tree.voltage_v
        draw = ev.draw_a if ev is not None else 0.0
        phases = len(sim.tree.connectors[slot].phases_for(ev.phases)) if ev and draw > 0 else 0
        values = {q: draw if i < phases else 0.0 for i, q in enumerate(_CURRENTS)}
        values[Quantity.POWER_TOTAL] = draw * phases * voltage
        if ev is not None:
            values[Quantity.SOC] = ev.soc * 100.0
            values[Quantity.SESSION_ENERGY] = ev.energy_kwh * 1000.0
        state = IecState.A if ev is None else IecState.C if draw > 0 else IecState.B
        return Reading(at=trio.current_time(), values=values, state=state)

    async def set_limit(self, current_a: float, phases: int) -> AppliedLimit:
        """Offer `current_a` (0 pauses); it renews the charger's lease."""
        self._online().write_limits({self._slot: current_a}, self._sim.now)
        return AppliedLimit(current_a, phases, current_a == 0, trio.current_time())

    async def configure_failsafe(self, timeout_s: float, failsafe_current_a: float) -> None:
        """The charger's own lease and the current it falls back to."""
        charger = self._online()
        charger.lease_s, charger.failsafe_a = timeout_s, failsafe_current_a

    async def heartbeat(self) -> None:
        """Renew the charger's lease."""
        charger = self._online()
        charger.lease_until = self._sim.now + charger.lease_s


class MeterAdapter:
    """A simulated meter: its node's signed phase currents and powers."""

    def __init__(self, meter: MeterState, voltage_v: float) -> None:
        self._meter = meter
        self._voltage = voltage_v
        self.id = meter.id

    async def read(self) -> Reading:
        """The node's currents as the meter saw them during the last step."""
        currents = self._meter.currents_a if self._meter.alive else None
        if currents is None:
            raise DeviceError(f"{self.id}: the simulated meter does not answer")
        values = dict(zip(_CURRENTS, currents, strict=True))
        values |= {q: a * self._voltage for q, a in zip(_POWERS, currents, strict=True)}
        values[Quantity.POWER_TOTAL] = sum(currents) * self._voltage
        return Reading(at=trio.current_time(), values=values)


class BatteryAdapter:
    """The simulated battery, as the control loop's `Battery` (positive discharges)."""

    def __init__(self, battery: BatteryModel) -> None:
        self._battery = battery
        self.id = battery.id
        self.max_charge_w = battery.max_charge_kw * 1000.0
        self.max_discharge_w = battery.max_discharge_kw * 1000.0

    async def read(self) -> Reading:
        """State of charge and power."""
        battery = self._battery
        values = {
            Quantity.SOC: battery.soc * 100.0,
            Quantity.BATTERY_POWER: -battery.power_kw * 1e3,
        }
        return Reading(at=trio.current_time(), values=values)

    async def command(self, power_w: float) -> BatteryCommandResult:
        """Run at `power_w` from the next step (the model's sign: positive charges)."""
        self._battery.setpoint_kw = -power_w / 1000.0
        return BatteryCommandResult(max(-power_w, 0.0), max(power_w, 0.0))


class PvAdapter:
    """A simulated PV inverter's output, and the cap on it where its profile has one."""

    def __init__(self, pv: PvModel, curtailable: bool) -> None:
        self._pv = pv
        self.id = pv.id
        self.curtailable = curtailable

    async def read(self) -> Reading:
        """Its output (W), and as AC power seen from the site (negative)."""
        watts = self._pv.power_kw * 1000.0
        values = {Quantity.PV_POWER: watts, Quantity.POWER_TOTAL: -watts}
        return Reading(at=trio.current_time(), values=values)

    async def curtail(self, power_w: float | None, fallback_w: float | None = None) -> float | None:
        """Cap its output at `power_w` (None: no cap); in-process there is no gateway to
        lose, so no fallback (`fallback_w`) to keep."""
        if not self.curtailable:
            raise DeviceError(f"{self.id}: its profile has no power limit")
        self._pv.cap_kw = None if power_w is None else max(power_w, 0.0) / 1000.0
        return None if power_w is None else max(power_w, 0.0)


class GridOperatorAdapter:
    """The grid operator's box: the scenario's limits as its profile reports them (a limit
    in percent of the connection, or relay contacts), its heartbeat counter the simulated
    second as on the wire (`register_feed.feed_grid_operator`)."""

    id = "grid-operator"

    def __init__(self, sim: Simulation, profile: Profile) -> None:
        self._sim = sim
        self.profile = profile

    async def read(self) -> Reading:
        """The limits in force (100 %: none)."""
        signal = self._sim.grid_signal
        values: dict[Quantity, float | None] = dict(signal.contacts(self.profile))
        if Quantity.GRID_LIMIT_PERCENT in self.profile.fields or not values:
            values[Quantity.GRID_LIMIT_PERCENT] = signal.percent
        if Quantity.GRID_LIMIT_HEARTBEAT in self.profile.fields:
            values[Quantity.GRID_LIMIT_HEARTBEAT] = float(int(self._sim.now) & 0xFFFF)
        return Reading(at=trio.current_time(), values=values)


def site_devices(sim: Simulation) -> SiteDevices:
    """Every device of the simulated site as the control loop talks to it."""
    voltage = sim.tree.voltage_v
    failsafes = {c.id: load_named(c.modbus.profile).failsafe for c in sim.site.chargers if c.modbus}
    chargers = {
        (wiring.charger, wiring.connector): ConnectorAdapter(
            sim, slot, failsafes.get(wiring.charger)
        )
        for slot, wiring in enumerate(sim.tree.connectors)
    }
    operator = sim.site.grid_operator
    box = None
    if operator is not None and operator.source in _BOX_SOURCES and operator.modbus is not None:
        box = GridOperatorAdapter(sim, load_named(operator.modbus.profile))
    rule = box.profile.grid_operator if box is not None else None
    heartbeat_s = (
        None if box is None or operator is None else heartbeat_timeout_s(operator, box.profile)
    )
    profiles = {pv.id: load_named(pv.modbus.profile) for pv in sim.site.pv}
    return SiteDevices(
        chargers=chargers,
        meters={m.id: MeterAdapter(m, voltage) for m in sim.meters.values()},
        grid_operator=box,
        battery=None if sim.battery is None else BatteryAdapter(sim.battery),
        pv={
            pv.id: PvAdapter(pv, profiles[pv.id].commands.power_limit is not None) for pv in sim.pv
        },
        feed_in_rule=dict(rule.feed_in_percent) if rule is not None else {},
        grid_operator_heartbeat_s=heartbeat_s,
    )


def control_loop(sim: Simulation) -> ControlLoop:
    """hubgate's control loop for the simulated site, as `hubgate run` builds it, its wall
    clock the scenario's (`Simulation.epoch_s` at t = 0), its demand state and charging-session
    records not kept."""
    epoch = sim.epoch_s
    loop = ControlLoop(
        sim.site,
        site_devices(sim),
        limits=LimitBook(),
        decisions=DecisionLog(),
        hub=StateHub(),
        wall_clock=lambda: epoch + trio.current_time(),
        keep_demand=False,
        record_sessions=False,
    )
    prices = sim.scenario.prices
    if prices is not None and prices.told:  # a week of them, as through PUT /api/v1/prices
        midnight = epoch - sim.scenario.scenario.start_hour * 3600
        loop.planner.horizon.prices.put(midnight, 3600.0, prices.hourly * 7)
    return loop


async def tell_needs(sim: Simulation, loop: ControlLoop) -> None:
    """Hand the controller the need and departure of each fleet vehicle that plugged in, as
    the depot's system would through the API (`Commands.set_session`)."""
    plugged, sim.plugged = sim.plugged, []
    fleet = sim.scenario.fleet
    if fleet is None or not fleet.told:
        return
    for slot, ev in plugged:
        wiring = sim.tree.connectors[slot]
        assert ev.need_kwh is not None
        departure = datetime.fromtimestamp(sim.epoch_s + ev.departs_at, UTC)
        key = connector_target(wiring.charger, wiring.connector)
        await loop.commands.set_session(key, ev.need_kwh, departure, max_current_a=ev.max_current_a)


async def run_hubgate(
    sim: Simulation,
    duration_s: float,
    on_step: Callable[[Simulation], None] | None = None,
    *,
    speed: float = math.inf,
    loop: ControlLoop | None = None,
) -> ControlLoop:
    """Run the simulation for `duration_s` with hubgate's loop controlling it, on Trio's
    clock, which must be a `MockClock` jumping ahead whenever everything waits
    (`autojump_threshold=0`); the loop.

    At a finite `speed` (simulated seconds per wall-clock second) each step also waits
    for its wall-clock time, blocking the whole run so that simulated time stands still
    meanwhile: the loop's work still takes no simulated time."""
    loop = loop or control_loop(sim)
    step = sim.step_s
    end = sim.now + duration_s - 1e-9
    origin_wall, origin_sim = time.monotonic(), sim.now
    written: float | None = None
    async with trio.open_nursery() as nursery:
        await nursery.start(loop.run)
        while sim.now < end:
            await trio.sleep_until(sim.now + step / 2)
            wait_s = origin_wall + (sim.now - origin_sim) / speed - time.monotonic()
            if wait_s > 0:
                time.sleep(wait_s)  # pacing only: nothing else runs in this process
            sim.step()
            await tell_needs(sim, loop)
            written = _write_signal(sim, loop, written)
            if on_step is not None:
                on_step(sim)
        nursery.cancel_scope.cancel()
    return loop


def _write_signal(sim: Simulation, loop: ControlLoop, written: float | None) -> float | None:
    """Where the grid operator writes its limit (Modbus server, API), write the scenario's
    changes as that source's lease; the percentage now written."""
    operator = sim.site.grid_operator
    percent = sim.grid_signal.percent
    if operator is None or operator.source in _BOX_SOURCES or percent == written:
        return written
    source = LimitSource.MODBUS_SERVER
    if operator.source is GridOperatorSource.API:
        source = LimitSource.API
    limit = Limit(power_kw=grid_operator_limit_kw(percent, connection_kw(sim.site)))
    loop.limits.set(SITE, source, limit, now=trio.current_time(), lease_s=None, origin="scenario")
    return percent
