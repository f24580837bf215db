"""The battery and PV inside the control loop: read, decide, fold into the allocation, command.

`SiteEnergy` is the loop's one contact with them. Each cycle it

1. adds the battery's and the PV inverters' reads to the loop's concurrent reads;
2. takes the results (`absorb`), with the battery's state of charge and power;
3. `plan`: hands the `EnergyPolicy` the grid import (the connection's meter),
   the EV draw and demand, the limits in force and the battery's state, then
   folds the decision into the allocation input: the battery's reserve on its
   node and every node above it (only what a fresh meter there does not
   already show), the peak target as the root power target, and the PV-mode
   column with its budget;
4. gives the loop the battery command to send with the chargers' (`command_op`),
   re-sent at least every half lease so the device never holds a stale one;
5. describes the decision for the decision record and the snapshot.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from hubgate.config.model import GRID_NODE_ID, SiteConfig
from hubgate.control.cycle import Failed
from hubgate.control.energy import (
    BatterySpec,
    EnergyDecision,
    EnergyInputs,
    EnergyPolicy,
)
from hubgate.control.limits import LimitBook
from hubgate.control.site_model import SiteModel
from hubgate.devices.model import Battery, BatteryCommandResult, Device, Reading
from hubgate.devices.storage import battery_state, pv_power_w
from hubgate.profiles.model import Quantity
from hubgate.state import EnergyState

Phases3 = tuple[float, float, float]


@dataclass(frozen=True)
class EnergyPlan:
    """What the allocation takes from the battery and PV this cycle."""

    pv_mode: array[int] | None
    pv_surplus_w: float
    battery_discharge_w: float
    peak_w: float
    notes: tuple[str, ...]


class SiteEnergy:
    """Battery and PV of one site, for the control loop."""

    def __init__(
        self,
        site: SiteConfig,
        model: SiteModel,
        battery: Battery | None,
        pv: Mapping[str, Device],
        node_index: Callable[[str], int],
        limits: LimitBook,
    ) -> None:
        self.model = model
        self.limits = limits
        self.battery = battery
        self.pv = dict(pv)
        control = site.control
        config = site.battery
        spec = (
            BatterySpec.from_config(
                config,
                device_charge_w=battery.max_charge_w,
                device_discharge_w=battery.max_discharge_w,
            )
            if config is not None and battery is not None
            else None
        )
        self.policy = EnergyPolicy(spec, stale_s=max(control.meter_stale_s, 2 * control.cycle_s))
        self._battery_name = f"battery:{battery.id}" if battery is not None else None
        self._path = model.ancestors[node_index(config.node)] if config is not None else ()
        self._refresh_s = control.lease_s / 2
        target = site.grid.peak_target_kw
        self.peak_target_w = math.inf if target is None else target * 1000
        self._root_meters = [m.id for m in site.meters if m.node == GRID_NODE_ID]
        by_key = {(ch.id, c.id): c.pv_mode for ch in site.chargers for c in ch.connectors}
        self.pv_mode = array("b", [by_key[info.key] for info in model.connectors])
        self._any_pv_mode = any(self.pv_mode)
        self.battery_reading: Reading | None = None
        self.pv_w: dict[str, float | None] = {}
        self.decision: EnergyDecision | None = None
        self.grid_import_w: float | None = None
        self._sent: tuple[float, float] | None = None
        """The last command the battery confirmed and when."""
        self._failing = False

    # -- sensing ---------------------------------------------------------------------------

    def read_ops(self) -> dict[str, Callable[[], Awaitable[object]]]:
        """The reads to run with the loop's, by device name."""
        ops: dict[str, Callable[[], Awaitable[object]]] = {
            f"pv:{pv_id}": device.read for pv_id, device in self.pv.items()
        }
        if self.battery is not None and self._battery_name is not None:
            ops[self._battery_name] = self.battery.read
        return ops

    def absorb(self, readings: Mapping[str, object]) -> dict[str, object]:
        """Keep this cycle's battery and PV readings; every outcome by name, for health."""
        outcomes: dict[str, object] = {}
        for pv_id in self.pv:
            name = f"pv:{pv_id}"
            outcome = outcomes[name] = readings.get(name)
            if isinstance(outcome, Reading):
                self.pv_w[pv_id] = pv_power_w(outcome)
        if self._battery_name is not None:
            outcome = outcomes[self._battery_name] = readings.get(self._battery_name)
            if isinstance(outcome, Reading):
                self.battery_reading = outcome
        return outcomes

    # -- planning --------------------------------------------------------------------------

    def plan(
        self,
        now: float,
        *,
        base: array[float],
        measured: Mapping[int, Phases3],
        meter_readings: Mapping[str, Reading],
        draws: Sequence[Phases3],
        wanting: Sequence[int],
        ev_max: Sequence[float],
        grid_limit_w: float,
        peak_w: float,
    ) -> EnergyPlan:
        """Decide, and fold the decision into `base` (A per node and phase); the rest."""
        model = self.model
        voltage = model.voltage_v
        grid_import = self._grid_import_w(measured, meter_readings)
        self.grid_import_w = grid_import
        ev_draw = pv_draw = demand = 0.0
        for i, info in enumerate(model.connectors):
            drawn = sum(draws[i]) * voltage
            ev_draw += drawn
            if self.pv_mode[i]:
                pv_draw += drawn
            elif wanting[i]:
                amps = min(ev_max[i], info.max_current_a)
                demand += amps * (1 if info.one_phase else 3) * voltage
        room = self._phase_room_w(measured, grid_import, self._phase_limits(now))
        limit = min(grid_limit_w, peak_w, room)
        reading = self.battery_reading
        state = battery_state(reading) if reading is not None else None
        decision = self.policy.decide(
            EnergyInputs(
                now=now,
                grid_import_w=grid_import,
                grid_limit_w=limit,
                peak_target_w=self.peak_target_w,
                ev_draw_w=ev_draw,
                grid_ev_demand_w=demand,
                pv_mode_draw_w=pv_draw,
                battery=state,
            )
        )
        self.decision = decision
        for node in self._path:
            reserve = (
                decision.reserve_metered_w if node in measured else decision.reserve_unmetered_w
            )
            for p in range(3):
                base[3 * node + p] += reserve / (3 * voltage)
        notes = [f"energy: {reason}" for reason in decision.reasons]
        return EnergyPlan(
            pv_mode=self.pv_mode if self._any_pv_mode else None,
            pv_surplus_w=decision.pv_surplus_w if self._any_pv_mode else math.inf,
            battery_discharge_w=decision.battery_budget_w if self._any_pv_mode else 0.0,
            peak_w=min(peak_w, self.peak_target_w),
            notes=tuple(notes),
        )

    def _grid_import_w(
        self, measured: Mapping[int, Phases3], readings: Mapping[str, Reading]
    ) -> float | None:
        """The connection's import from its fresh meter: total power, else from the currents."""
        if 0 not in measured:
            return None
        for meter_id in self._root_meters:
            reading = readings.get(meter_id)
            if reading is None or Quantity.POWER_TOTAL in reading.older:
                continue  # a carried power is not this cycle's import
            power = reading.get(Quantity.POWER_TOTAL)
            if power is not None:
                return power
        return sum(measured[0]) * self.model.voltage_v

    def _phase_limits(self, now: float) -> dict[int, Phases3]:
        """The limit book's phase limits on the nodes above the battery (site, node targets)."""
        found: dict[int, Phases3] = {}
        for node in self._path:
            phase = self.limits.in_force(self.model.limit_target(node), now).limit.phase_a
            if phase is not None:
                found[node] = phase
        return found

    def _phase_room_w(
        self,
        measured: Mapping[int, Phases3],
        grid_import: float | None,
        phase_limits: Mapping[int, Phases3],
    ) -> float:
        """A limit on grid import under which an even three-phase change at the battery keeps
        every phase of every node on its path within its cap (the site file's, or the limit
        book's where tighter): the import now plus three times the smallest phase headroom,
        which is negative on a node above its cap. An unmetered node below the connection
        allows the battery no charging at all."""
        if grid_import is None:
            return math.inf  # the policy idles the battery without a grid meter
        voltage = self.model.voltage_v
        room = math.inf
        for node in self._path:
            currents = measured.get(node)
            if currents is None:
                room = min(room, grid_import + min(self.policy.last_power_w, 0.0))
                continue
            caps = self.model.caps_a[node]
            book = phase_limits.get(node)
            if book is not None:
                caps = (min(caps[0], book[0]), min(caps[1], book[1]), min(caps[2], book[2]))
            worst = min(caps[p] - currents[p] for p in range(3))
            room = min(room, grid_import + 3 * voltage * worst)
        return room

    def set_pv_mode(self, index: int, pv_mode: bool) -> None:
        """Switch the connector at `index` to PV-surplus-only charging, or back to the grid."""
        self.pv_mode[index] = pv_mode
        self._any_pv_mode = any(self.pv_mode)

    # -- commanding ------------------------------------------------------------------------

    def command_op(self, now: float) -> tuple[str, Callable[[], Awaitable[object]]] | None:
        """The battery command to send this cycle: when it changed or half a lease went by."""
        battery, decision = self.battery, self.decision
        if battery is None or decision is None:
            return None
        if decision.battery_w is None:
            self._sent = None  # not heard from: it may have lost its limits, send when back
            return None
        wanted = decision.battery_w
        sent = self._sent
        if sent is not None and sent[0] == wanted and now - sent[1] < self._refresh_s:
            return None
        assert self._battery_name is not None

        async def run() -> BatteryCommandResult:
            return await battery.command(wanted)

        return self._battery_name, run

    def commanded(self, outcome: object, now: float) -> str | None:
        """Note the battery's answer to `command_op`'s command (a failure is re-sent next
        cycle); what to tell the operator when commanding starts or stops failing."""
        if isinstance(outcome, BatteryCommandResult):
            self._sent = (outcome.power_w, now)
            if self._failing:
                self._failing = False
                return "commands accepted again"
            return None
        self._sent = None
        if self._failing:
            return None
        self._failing = True
        why = (
            f"{type(outcome.error).__name__}: {outcome.error}"
            if isinstance(outcome, Failed)
            else "no answer"
        )
        return f"command failed ({why})"

    # -- records ---------------------------------------------------------------------------

    def record(self) -> dict[str, object]:
        """The decision for the decision record."""
        decision = self.decision
        if decision is None:
            return {}
        return {
            "battery_mode": decision.mode.value,
            "battery_command_w": decision.battery_w,
            "grid_import_w": self.grid_import_w,
            "pv_surplus_w": decision.pv_surplus_w,
            "pv_budget_w": decision.pv_budget_w,
            "battery_reserve_w": decision.reserve_metered_w,
            "peak_target_w": self.peak_target_w,
            "pv_power_w": dict(self.pv_w),
        }

    def snapshot(self) -> EnergyState | None:
        """The dashboard's view: battery, PV, grid import, budget (None on a site with
        neither a battery, PV nor a PV-mode connector)."""
        decision = self.decision
        if decision is None or (self.battery is None and not self.pv and not self._any_pv_mode):
            return None
        reading = self.battery_reading
        state = battery_state(reading) if reading is not None else None
        produced = [w for w in self.pv_w.values() if w is not None]
        return EnergyState.model_construct(
            battery_mode=decision.mode.value,
            battery_soc_percent=state.soc_percent if state is not None else None,
            battery_power_kw=state.power_w / 1000 if state is not None else None,
            battery_command_kw=None if decision.battery_w is None else decision.battery_w / 1000,
            pv_power_kw=sum(produced) / 1000 if produced else None,
            grid_import_kw=None if self.grid_import_w is None else self.grid_import_w / 1000,
            peak_target_kw=_finite_kw(self.peak_target_w),
            pv_budget_kw=decision.pv_budget_w / 1000,
            reasons=decision.reasons,
        )


def _finite_kw(watts: float) -> float | None:
    return None if math.isinf(watts) else watts / 1000
