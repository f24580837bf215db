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
4. `settle`: once the setpoints are known, holds a discharge to what the site will draw
   and caps the PV inverters to what the site may feed in (`PvCurtailment`: the
   `grid.export_limit_kw` and the grid operator's feed-in contacts);
5. gives the loop the battery command and the PV caps to send with the chargers'
   (`command_ops`), re-sent when they change and at least every half lease, so the
   devices never hold a stale one;
6. describes the decision for the decision record and the snapshot.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from hubgate._core import AllocReason
from hubgate.config.model import GRID_NODE_ID, SiteConfig
from hubgate.control.cycle import Failed
from hubgate.control.decisions import Phases3
from hubgate.control.energy import (
    BatteryMode,
    BatterySpec,
    EnergyDecision,
    EnergyInputs,
    EnergyPolicy,
)
from hubgate.control.limits import LimitBook
from hubgate.control.pv_curtailment import (
    CurtailDecision,
    PvCurtailment,
    PvUnit,
    feed_in_percent_of,
)
from hubgate.control.site_model import SiteModel
from hubgate.devices.model import Battery, BatteryCommandResult, Curtailable, Device, Reading
from hubgate.devices.pv import pv_power_w
from hubgate.devices.storage import battery_state
from hubgate.profiles.model import Quantity
from hubgate.state import EnergyState


class Allocated(Protocol):
    """What the plan reads of the last cycle's allocation (a `CycleResult`)."""

    @property
    def reason(self) -> Sequence[int]:
        """Reason codes (`AllocReason.members()[code]`)."""

    @property
    def binding_node(self) -> Sequence[int]:
        """Node of the binding limit (0: the connection), or -1."""

    @property
    def target_a(self) -> Sequence[float]:
        """Targets, A per phase."""

    @property
    def phases(self) -> Sequence[int]:
        """Phases drawn on."""

    @property
    def setpoint_a(self) -> Sequence[float]:
        """Setpoints sent, A per phase."""


CAP_DEADBAND_SHARE = 0.01
"""A PV cap is re-sent before its refresh only when it moved by this share of the peak."""

TAKES_ALL_A = 1.0
"""An EV drawing at most this much below its setpoint takes all it is given."""

_REASONS = AllocReason.members()
_NOT_WANTING = _REASONS.index(AllocReason.NOT_WANTING)
_MIN_OFF = _REASONS.index(AllocReason.PAUSED_MIN_OFF)


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
        ev_headroom_a: float = 0.0,
        feed_in_rule: Mapping[Quantity, float] | None = None,
    ) -> None:
        """`ev_headroom_a`: what an EV that draws less than offered keeps above its draw;
        `feed_in_rule`: the grid operator's contacts and the feed-in cap (%) each stands
        for, where its box has them."""
        self.model = model
        self._ev_headroom_a = ev_headroom_a
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
        self.policy = EnergyPolicy(spec, stale_s=control.meter_stale_after_s)
        self._battery_name = f"battery:{battery.id}" if battery is not None else None
        self._path = model.ancestors[node_index(config.node)] if config is not None else ()
        self._refresh_s = control.lease_s / 2
        target = site.grid.peak_target_kw
        self.peak_target_w = math.inf if target is None else target * 1000
        self._root_meters = [m.id for m in site.meters if m.node == GRID_NODE_ID]
        by_key = {(ch.id, c.id): c.pv_mode for ch in site.chargers for c in ch.connectors}
        self.pv_mode = array("b", [by_key[info.key] for info in model.connectors])
        self.ev_phases = array("b", [1 if info.one_phase else 3 for info in model.connectors])
        """How many phases each connector's EV draws on at most (1 for a one-phase EV seen
        at a three-phase connector: `ConnectorRuntime.observe_phases`)."""
        self._any_pv_mode = any(self.pv_mode)
        self.battery_reading: Reading | None = None
        self.pv_w: dict[str, float | None] = {}
        self.decision: EnergyDecision | None = None
        self.grid_import_w: float | None = None
        self.ev_draw_w = 0.0
        self._draws: Sequence[Phases3] = ()
        """This cycle's draws by connector (A per grid phase)."""
        self.balance_limit: tuple[float, str | None] = (math.inf, None)
        """The tightest limit on the connection's import and what it is."""
        self._sent: tuple[float, float] | None = None
        """The last command the battery confirmed and when."""
        self._wanted_w = 0.0
        """The newest battery command decided (W), what a command sends when it starts."""
        self._sending: float | None = None
        """The battery command on its way (W), until it ends."""
        self._may_charge_w = 0.0
        """The most the battery may charge at (W) by the commands it was sent: the last one
        it answered and any sent since (not answered, failed or cut short: each may have
        reached it)."""
        self._failing: set[str] = set()
        """Devices whose last command failed."""
        self._curtailable = {
            pv_id: device
            for pv_id, device in self.pv.items()
            if isinstance(device, Curtailable) and device.curtailable
        }
        export = site.grid.export_limit_kw
        self.curtailment = PvCurtailment(
            tuple(PvUnit(p.id, p.peak_kw * 1000, p.id in self._curtailable) for p in site.pv),
            math.inf if export is None else export * 1000,
        )
        self._feed_in_rule = dict(feed_in_rule or {})
        self.feed_in_percent: float | None = None
        """What the grid operator's contacts last said (held while its box is silent)."""
        self.pv_decision: CurtailDecision | None = None
        self._caps_sent: dict[str, tuple[float | None, float | None, float]] = {}
        """The last cap each inverter confirmed (W, None: no cap), its fallback and when."""
        self._fallbacks_sending: dict[str, float | None] = {}
        """The fallback sent with each inverter's command in flight."""

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
        box = readings.get("grid-operator")
        if self._feed_in_rule and isinstance(box, Reading):
            percent = feed_in_percent_of(box.values, self._feed_in_rule)
            if percent is not None:
                self.feed_in_percent = percent
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
        grid_operator_w: float,
        peak_w: float,
        battery_operator_w: float | None = None,
        reserved_w: float = 0.0,
        last: Allocated | None = None,
    ) -> EnergyPlan:
        """Decide, and fold the decision into `base` (A per node and phase); the rest.

        `grid_operator_w` is the grid operator's limit as the EVs get it (with the §14a
        floor), `battery_operator_w` as the battery does (without: the floor is the §14a
        devices', so the battery never charges from the grid on it; None: the same);
        `reserved_w` what connectors reserved at their maximum may draw on top of their
        draw (the battery charges into none of it).
        `last` is the previous cycle's allocation, which tells what the EVs would take
        with more room at the connection (`_ev_demand_w`)."""
        model = self.model
        voltage = model.voltage_v
        grid_import = self._grid_import_w(measured, meter_readings)
        self.grid_import_w = grid_import
        ev_draw = pv_draw = 0.0
        self._draws = draws
        for i in range(len(model.connectors)):
            drawn = sum(draws[i]) * voltage
            ev_draw += drawn
            if self.pv_mode[i]:
                pv_draw += drawn
        demand, held, headroom = self._ev_demand_w(draws, wanting, ev_max, last)
        room = self._phase_room_w(measured, grid_import, self._phase_limits(now))
        limits = {
            "grid-operator": grid_operator_w,
            "connection": model.power_kw[0] * 1000,
            "site-limit": peak_w,
            "phase-limits": room,
            "peak-target": self.peak_target_w,
        }
        binding = min(limits, key=limits.__getitem__)
        self.balance_limit = (limits[binding], binding if math.isfinite(limits[binding]) else None)
        self.ev_draw_w = ev_draw
        reading = self.battery_reading
        state = battery_state(reading) if reading is not None else None
        decision = self.policy.decide(
            EnergyInputs(
                now=now,
                grid_import_w=grid_import,
                grid_limit_w=min(
                    grid_operator_w if battery_operator_w is None else battery_operator_w,
                    limits["connection"],
                    peak_w,
                    room,
                ),
                peak_target_w=self.peak_target_w,
                ev_draw_w=ev_draw,
                grid_ev_demand_w=demand,
                pv_mode_draw_w=pv_draw,
                evs_held=held,
                ev_headroom_w=headroom,
                pv_spare_w=self.pv_decision.spare_w if self.pv_decision is not None else 0.0,
                reserved_w=reserved_w,
                battery=state,
            )
        )
        if self._may_charge_w > max(decision.reserve_unmetered_w, 0.0):
            # a charge sent but not answered yet may start any moment (the grid meter shows
            # it only then), the last one answered holds until a later one lands
            decision = replace(
                decision,
                reserve_metered_w=max(
                    decision.reserve_metered_w, self._may_charge_w + self.policy.last_power_w
                ),
                reserve_unmetered_w=self._may_charge_w,
                reasons=(
                    *decision.reasons,
                    f"a {self._may_charge_w / 1000:.1f} kW charge may start: counted",
                ),
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

    def settle(self, result: Allocated, reached: Sequence[bool]) -> None:
        """Once this cycle's setpoints are known (`result`): the discharge is held to what
        the site will draw once the EVs follow them (`_hold_discharge`; `reached`: the
        connectors their setpoints are sent to); then the PV caps for what the site may
        feed in."""
        self._hold_discharge(result, reached)
        decision = self.decision
        change = 0.0
        if decision is not None and decision.battery_w is not None:
            change = self.policy.last_power_w - decision.battery_w
        self.pv_decision = self.curtailment.decide(
            grid_import_w=self.grid_import_w,
            pv_w=self.pv_w,
            feed_in_percent=self.feed_in_percent,
            battery_change_w=change,
        )

    def _hold_discharge(self, result: Allocated, reached: Sequence[bool]) -> None:
        """A discharge no larger than what the site draws once the reached connectors follow
        this cycle's setpoints (their decreases below their draw; an unreachable one keeps
        drawing): beyond it, it would feed the grid when they do. Where that is less than
        the discharge measured, the cut stops where the import would pass the limit in force
        if no EV followed (the limit first: what is then exported is the least the limit
        allows, for the cycle the EVs take to follow)."""
        decision, grid = self.decision, self.grid_import_w
        if decision is None or grid is None or not decision.battery_w or decision.battery_w < 0:
            return
        voltage, draws = self.model.voltage_v, self._draws
        falling = sum(
            max(0.0, (sum(draws[i]) - result.setpoint_a[i] * result.phases[i]) * voltage)
            for i in range(len(draws))
            if reached[i]
        )
        measured = max(self.policy.last_power_w, 0.0)
        draws_now = max(0.0, grid + self.policy.last_power_w)
        cap = max(draws_now - falling, min(measured, draws_now - self.balance_limit[0]), 0.0)
        if decision.battery_w > cap:
            reason = f"discharge held to {cap / 1000:.1f} kW: the EVs are told to draw less"
            self.decision = replace(decision, battery_w=cap, reasons=(*decision.reasons, reason))
            self.policy.last_command_w = cap

    def _ev_demand_w(
        self,
        draws: Sequence[Phases3],
        wanting: Sequence[int],
        ev_max: Sequence[float],
        last: Allocated | None,
    ) -> tuple[float, bool, float]:
        """What the grid-mode EVs that want current would take with more room at the
        connection, from the last allocation: a new EV, or one the connection's limits held
        back that takes all it is given, its maximum; one held back that takes less, the
        larger of its setpoint and its draw with the headroom to climb; any other the largest of its draw, setpoint and target;
        nothing while it waits out its minimum off time. Also whether an EV held back took
        all it was given (so that more room would be used), and the room the EVs not held
        back are given above their draw to climb into (at most `ev_headroom_a` each)."""
        model = self.model
        voltage = model.voltage_v
        demand, held, headroom = 0.0, False, 0.0
        for i, info in enumerate(model.connectors):
            if self.pv_mode[i] or not wanting[i]:
                continue
            hi = min(ev_max[i], info.max_current_a) * self.ev_phases[i] * voltage
            reason = last.reason[i] if last is not None else _NOT_WANTING
            if reason == _NOT_WANTING or last is None:
                demand += hi  # new: it may take its maximum
                continue
            if reason == _MIN_OFF:
                continue
            per_a = last.phases[i] * voltage
            drawn = sum(draws[i]) * voltage
            if last.binding_node[i] == 0 and max(draws[i]) >= last.setpoint_a[i] - TAKES_ALL_A:
                # held back by the connection and takes all it is given (not its own
                # limit): room there is what it lacks
                demand += hi
                held = True
            elif last.binding_node[i] == 0:
                # held back by the connection but takes less: on its way up it takes its
                # setpoint soon (counted at its draw, an EV just started left the room to a
                # battery charging from the grid, which paused it for its minimum off time);
                # at its own limit (`ev_max`, after `EV_SETTLE_S`) it climbs no further than
                # its headroom
                climb = drawn + self._ev_headroom_a * per_a
                demand += min(hi, max(climb, last.setpoint_a[i] * per_a))
            else:
                demand += max(drawn, max(last.target_a[i], last.setpoint_a[i]) * per_a)
                above = max(last.setpoint_a[i] * per_a - drawn, 0.0)
                headroom += min(above, self._ev_headroom_a * per_a)
        return demand, held, headroom

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

    def battery_a(self, node: int) -> float:
        """What the battery discharges through `node` as measured (an even current per
        phase, A; negative while it charges; 0 off its path or silent)."""
        reading = self.battery_reading
        state = battery_state(reading) if reading is not None else None
        if state is None or node not in self._path:
            return 0.0
        return state.power_w / (3 * self.model.voltage_v)

    def spare_a(self, node: int) -> float:
        """What the battery can still add through `node` within a cycle of a rise in the
        import (an even current per phase, A): while it charges, its charge (a discharge
        waits out the policy's dwell); else up to its rating, above its minimum state of
        charge. 0 off its path, silent, or idled (no grid meter)."""
        decision, spec = self.decision, self.policy.spec
        if node not in self._path or decision is None or decision.battery_w is None:
            return 0.0
        if spec is None or decision.mode is BatteryMode.NO_GRID_METER:
            return 0.0
        if decision.battery_w < 0:
            spare = -decision.battery_w
        else:
            reading = self.battery_reading
            state = battery_state(reading) if reading is not None else None
            if state is None or state.soc_percent <= spec.min_soc_percent:
                return 0.0
            spare = spec.max_discharge_w - max(decision.battery_w, self.policy.last_power_w)
        return max(spare, 0.0) / (3 * self.model.voltage_v)

    def set_pv_mode(self, index: int, pv_mode: bool) -> None:
        """Switch the connector at `index` to PV-surplus-only charging, or back to the grid."""
        self.pv_mode[index] = pv_mode
        self._any_pv_mode = any(self.pv_mode)

    # -- commanding ------------------------------------------------------------------------

    def command_ops(self, now: float) -> dict[str, Callable[[], Awaitable[object]]]:
        """The battery command and the PV caps to send this cycle, by device name: each
        when it (or an inverter's fallback) changed or half a lease went by since it was
        confirmed (a lifted cap too: an inverter told its maximum has its lease running)."""
        ops: dict[str, Callable[[], Awaitable[object]]] = {}
        battery = self._battery_op(now)
        if battery is not None:
            ops[battery[0]] = battery[1]
        decision = self.pv_decision
        if decision is None:
            return ops
        peaks = {unit.id: unit.peak_w for unit in self.curtailment.units}
        for pv_id, device in self._curtailable.items():
            cap, fallback = decision.caps_w.get(pv_id), decision.fallback_w.get(pv_id)
            sent = self._caps_sent.get(pv_id)
            if (
                sent is not None
                and _same_cap(sent[0], cap, peaks[pv_id])
                and _same_cap(sent[1], fallback, peaks[pv_id])
                and now - sent[2] < self._refresh_s
            ):
                continue
            self._fallbacks_sending[pv_id] = fallback
            ops[f"pv:{pv_id}"] = _curtail_op(device, cap, fallback)
        return ops

    def fallback_ops(self) -> dict[str, Callable[[], Awaitable[object]]]:
        """Each inverter with a fallback cap told it as its cap (on shutdown), by name."""
        decision = self.pv_decision
        if decision is None:
            return {}
        ops: dict[str, Callable[[], Awaitable[object]]] = {}
        for pv_id, device in self._curtailable.items():
            fallback = decision.fallback_w.get(pv_id)
            if fallback is not None:
                ops[f"pv:{pv_id}"] = _curtail_op(device, fallback, fallback)
        return ops

    def _battery_op(self, now: float) -> tuple[str, Callable[[], Awaitable[object]]] | None:
        battery, decision = self.battery, self.decision
        if battery is None or decision is None:
            return None
        if decision.battery_w is None:
            self._sent = None  # not heard from: it may have lost its limits, send when back
            return None
        wanted = self._wanted_w = decision.battery_w
        sent = self._sent
        if sent is not None and sent[0] == wanted and now - sent[1] < self._refresh_s:
            return None
        if self._sending == wanted:  # on its way (`control.dispatch` runs it aside)
            return None
        assert self._battery_name is not None

        async def run() -> BatteryCommandResult:
            # the newest command when it starts: one that waited for the one before to end
            # (`control.dispatch` runs them in turns) sends what is wanted by then
            self._sending = command = self._wanted_w
            self._may_charge_w = max(self._may_charge_w, -command)
            try:
                return await battery.command(command)
            finally:
                self._sending = None

        return self._battery_name, run

    def resend(self) -> None:
        """Send the battery command and every PV cap next cycle, confirmed or not (a new
        epoch: what this gateway sent before may have been replaced by another)."""
        self._sent = None
        self._caps_sent.clear()

    def commanded(self, name: str, outcome: object, now: float) -> str | None:
        """Note a device's answer to its `command_ops` command (a failure is re-sent next
        cycle); what to tell the operator when commanding it starts or stops failing."""
        ok = False
        if name == self._battery_name:
            if isinstance(outcome, BatteryCommandResult):
                self._sent, ok = (outcome.power_w, now), True
                self._may_charge_w = max(-outcome.power_w, 0.0)
            else:
                self._sent = None
        elif name.startswith("pv:"):
            pv_id = name.removeprefix("pv:")
            fallback = self._fallbacks_sending.pop(pv_id, None)
            if outcome is None or isinstance(outcome, float):
                self._caps_sent[pv_id], ok = (outcome, fallback, now), True
            else:
                self._caps_sent.pop(pv_id, None)
        if ok:
            if name in self._failing:
                self._failing.discard(name)
                return "commands accepted again"
            return None
        if name in self._failing:
            return None
        self._failing.add(name)
        why = (
            f"{type(outcome.error).__name__}: {outcome.error}"
            if isinstance(outcome, Failed)
            else "no answer"
        )
        return f"command failed ({why})"

    # -- records ---------------------------------------------------------------------------

    def balance(self) -> dict[str, object]:
        """The connection's signed balance this cycle (W): import = base + EVs - battery - PV,
        with the tightest limit on the import and what it is."""
        reading = self.battery_reading
        state = battery_state(reading) if reading is not None else None
        battery = state.power_w if state is not None else 0.0
        pv = sum(w for w in self.pv_w.values() if w is not None)
        grid = self.grid_import_w
        limit, binding = self.balance_limit
        return {
            "import_w": grid,
            "base_w": None if grid is None else grid - self.ev_draw_w + battery + pv,
            "battery_w": battery,
            "pv_w": pv,
            "evs_w": self.ev_draw_w,
            "limit_w": limit if math.isfinite(limit) else None,
            "binding": binding,
            "export_limit_w": self._allowed_export_w(),
        }

    def _allowed_export_w(self) -> float | None:
        """What the site may feed in now (None: no limit)."""
        allowed = self.curtailment.allowed_export_w(self.feed_in_percent)
        return allowed if math.isfinite(allowed) else None

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
            "pv_caps_w": dict(self.pv_decision.caps_w) if self.pv_decision else {},
            "export_limit_w": self._allowed_export_w(),
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
            reasons=decision.reasons + (self.pv_decision.reasons if self.pv_decision else ()),
        )


def _finite_kw(watts: float) -> float | None:
    return None if math.isinf(watts) else watts / 1000


def _same_cap(sent: float | None, cap: float | None, peak_w: float) -> bool:
    """Whether a cap is the one sent, within the deadband."""
    if sent is None or cap is None:
        return sent is None and cap is None
    return abs(sent - cap) < CAP_DEADBAND_SHARE * peak_w


def _curtail_op(
    device: Curtailable, cap: float | None, fallback: float | None
) -> Callable[[], Awaitable[object]]:
    async def run() -> float | None:
        return await device.curtail(cap, fallback)

    return run
