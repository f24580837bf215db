"""Battery and PV policy: the battery's command and the PV-mode budget, once per cycle (sans-IO).

Powers are in W. Grid import is positive when the site draws from the grid;
the battery's power is positive when it discharges (as the `battery_power`
quantity), so its import is the negative of it. "Other load" is everything
behind the connection but the EVs and the battery, PV included (so it can be
negative around noon).

Each cycle `EnergyPolicy.decide` takes what was measured and returns:

- the battery command: discharge when the EVs that want current (grid-mode
  ones) would push grid import above the target (the peak target or a tighter
  limit in force), only as much as they need and never more than the site
  draws (a battery does not discharge into the grid), else charge from PV
  export, else (if allowed) from spare headroom under the target; never below
  the minimum or above the maximum state of charge, never above the battery's
  power ratings, never so that the battery's charging alone takes the
  connection above its limit;
- the PV-mode budget: the PV export there would be without the PV-mode
  connectors and the battery's charging (with what capped PV could give on top),
  plus what the battery delivers beyond what holding the peak needs;
- the import to reserve in the allocation on top of what the meters show:
  safety first, a discharge is only counted once it is measured, a charge as
  soon as it is commanded, and a battery that is not heard from is assumed to
  stop discharging and to keep charging at its last command.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum

from hubgate.config.model import Battery
from hubgate.devices.model import BatteryReading


class BatteryMode(StrEnum):
    """Why the battery does what it does this cycle."""

    IDLE = "idle"
    PEAK_SHAVING = "peak-shaving"
    PV_CHARGE = "pv-charge"
    GRID_CHARGE = "grid-charge"
    UNAVAILABLE = "unavailable"
    NO_GRID_METER = "no-grid-meter"


@dataclass(frozen=True)
class BatterySpec:
    """What the battery may be told to do: power ratings in W, the SoC window."""

    max_charge_w: float
    max_discharge_w: float
    min_soc_percent: float
    max_soc_percent: float
    charge_from_grid: bool = True

    @classmethod
    def from_config(
        cls, battery: Battery, *, device_charge_w: float, device_discharge_w: float
    ) -> BatterySpec:
        """The site file's battery, rated no higher than its device can be told to go."""
        return cls(
            max_charge_w=min(battery.max_charge_kw * 1000, device_charge_w),
            max_discharge_w=min(battery.max_discharge_kw * 1000, device_discharge_w),
            min_soc_percent=battery.min_soc_percent,
            max_soc_percent=battery.max_soc_percent,
            charge_from_grid=battery.charge_from_grid,
        )


@dataclass(frozen=True)
class EnergyInputs:
    """One cycle's measurements and limits for the policy."""

    now: float
    grid_import_w: float | None
    """The connection's metered import; None when it has no fresh meter."""
    grid_limit_w: float
    """The most the connection may import now (every limit in force; inf for none)."""
    peak_target_w: float = math.inf
    """Contract or peak-shaving target on import (inf for none)."""
    ev_draw_w: float = 0.0
    """What all EVs draw now, measured."""
    grid_ev_demand_w: float = 0.0
    """What the grid-mode EVs that want current would take with more room at the
    connection: their maximum where its limits hold them back, else what they are given."""
    pv_mode_draw_w: float = 0.0
    """What the PV-mode connectors draw now (part of `ev_draw_w`)."""
    ev_headroom_w: float = 0.0
    """The room the EVs are given above their draw to climb into (part of the demand)."""
    pv_spare_w: float = 0.0
    """What capped PV inverters are assumed to be able to give on top (counted as surplus:
    their caps rise as it is used)."""
    reserved_w: float = 0.0
    """What connectors reserved at their maximum (unreachable, not following their limit)
    may draw on top of what they draw now: no room for the battery to charge into."""
    evs_held: bool = True
    """Whether an EV takes all it is given and the connection's limits hold it back (or it
    is not known): only then can a discharge give the EVs more; otherwise it only holds the
    import at the target."""
    battery: BatteryReading | None = None
    """The latest reading; None when the battery never answered."""


@dataclass(frozen=True)
class EnergyDecision:
    """The policy's outcome for one cycle."""

    mode: BatteryMode
    battery_w: float | None
    """Command: positive discharges, negative charges, 0 idles; None sends nothing."""
    pv_surplus_w: float
    battery_budget_w: float
    """Battery discharge PV-mode connectors may use, on top of the surplus."""
    reserve_metered_w: float
    """Import to add where a fresh meter already shows the battery."""
    reserve_unmetered_w: float
    """Import to add where no fresh meter shows the battery."""
    reasons: tuple[str, ...] = ()

    @property
    def pv_budget_w(self) -> float:
        """Everything PV-mode connectors may draw together."""
        return self.pv_surplus_w + self.battery_budget_w


@dataclass
class EnergyPolicy:
    """The battery and PV-budget decision, with the little memory it needs."""

    spec: BatterySpec | None
    stale_s: float
    deadband_w: float = 500.0
    """A command closer than this to the last one is not changed."""
    reverse_dwell_s: float = 3.0
    """Charging does not turn into discharging (or back) before this long after the last
    command the other way: no flapping on measurement noise."""
    release_s: float = 10.0
    """EVs held back by the connection count as held this long after (their setpoints climb
    in steps), and a discharge no EV is held back for eases off over at most this long
    (from the full rating to 0) rather than at once: the EVs take a while to use it."""
    last_command_w: float = 0.0
    last_power_w: float = 0.0
    """The battery's last measured power (kept while it is silent)."""
    _last_now: float = field(default=-math.inf, repr=False)
    _held_until: float = field(default=-math.inf, repr=False)
    _last_way: float = field(default=0.0, repr=False)
    """+1 after the last discharge command, -1 after the last charge command."""
    _last_way_at: float = field(default=-math.inf, repr=False)

    def decide(self, inputs: EnergyInputs) -> EnergyDecision:
        """The battery command, the PV-mode budget and the reserves for this cycle."""
        dt = max(0.0, inputs.now - self._last_now)
        self._last_now = inputs.now
        reading = inputs.battery
        fresh = reading is not None and inputs.now - reading.at <= self.stale_s
        if fresh:
            assert reading is not None
            self.last_power_w = reading.power_w
        grid = inputs.grid_import_w
        # The battery's import as the meter saw it: measured, else its last known
        # discharge only (a charge it may have stopped must not inflate the surplus).
        seen_import = -self.last_power_w if fresh else -max(self.last_power_w, 0.0)
        surplus = (
            0.0
            if grid is None
            else max(0.0, inputs.pv_mode_draw_w + seen_import - grid) + inputs.pv_spare_w
        )
        reasons: list[str] = []
        if grid is not None:
            reasons.append(f"grid import {grid / 1000:.1f} kW, PV surplus {surplus / 1000:.1f} kW")
        spec = self.spec
        if spec is None:
            return EnergyDecision(BatteryMode.IDLE, None, surplus, 0.0, 0.0, 0.0, tuple(reasons))
        if not fresh or reading is None:
            return self._unavailable(surplus, reasons)
        if grid is None:
            reasons.append("no fresh grid meter: battery idle")
            return self._command(inputs, BatteryMode.NO_GRID_METER, 0.0, surplus, 0.0, reasons)
        other = grid - inputs.ev_draw_w + reading.power_w
        target = min(inputs.peak_target_w, inputs.grid_limit_w)
        need = other + inputs.pv_mode_draw_w + inputs.grid_ev_demand_w - target
        can_discharge = reading.soc_percent > spec.min_soc_percent
        can_charge = reading.soc_percent < spec.max_soc_percent
        mode, command = BatteryMode.IDLE, 0.0
        # What the site draws without the battery: a discharge beyond it would be exported
        # (`SiteEnergy.settle` also holds it to what the site draws once the EVs follow
        # this cycle's setpoints).
        draws = max(0.0, grid + reading.power_w)
        # EVs held back by the connection (lately: their setpoints climb in steps): a
        # discharge gives them what they lack. Otherwise they take what they take, so a
        # discharge only holds the import at the target, with the room they are given to
        # climb into.
        if inputs.evs_held:
            self._held_until = inputs.now + self.release_s
        held = inputs.now < self._held_until
        shave = need if held else min(need, grid + reading.power_w - target + inputs.ev_headroom_w)
        if need > 0 and self.last_command_w > shave:
            # A smaller discharge cuts the EVs at once, and they follow late: ease it off.
            shave = max(shave, self.last_command_w - spec.max_discharge_w * dt / self.release_s)
        if shave > 0 and can_discharge and spec.max_discharge_w > 0:
            mode, command = BatteryMode.PEAK_SHAVING, min(shave, spec.max_discharge_w, draws)
            reasons.append(
                f"EV demand would import {(target + shave) / 1000:.1f} kW over the "
                f"{target / 1000:.1f} kW target: discharge {command / 1000:.1f} kW"
                + (" (what the site draws now)" if command == draws < shave else "")
            )
        elif shave > 0:
            reasons.append(f"peak {shave / 1000:.1f} kW over target, battery cannot discharge")
        elif need > 0:
            reasons.append("the EVs may take the room under the target: battery idle")
        elif can_charge and spec.max_charge_w > 0:
            # Never let the battery's charging alone take the connection over its limit.
            reserved = inputs.reserved_w
            room = max(0.0, inputs.grid_limit_w - (other + inputs.ev_draw_w) - reserved)
            export = max(0.0, seen_import - grid) + inputs.pv_spare_w
            # Never from the grid while an EV the connection holds back takes all it is
            # given: what it would take is this room, and the battery's charge, counted
            # as base load, would keep it throttled.
            grid_charge = spec.charge_from_grid and not held
            headroom = max(0.0, -need - reserved) if grid_charge else 0.0
            charge = min(spec.max_charge_w, room, max(export, headroom))
            if charge > 0:
                mode = BatteryMode.PV_CHARGE if export >= headroom else BatteryMode.GRID_CHARGE
                command = -charge
                source = "PV export" if mode is BatteryMode.PV_CHARGE else "spare headroom"
                reasons.append(f"charge {charge / 1000:.1f} kW from {source}")
        else:
            reasons.append(f"state of charge {reading.soc_percent:.0f} %: battery idle")
        shaving = command if mode is BatteryMode.PEAK_SHAVING else 0.0
        spare = max(0.0, reading.power_w - shaving) if reading.power_w > 0 else 0.0
        return self._command(inputs, mode, command, surplus, spare, reasons, draws)

    def _command(
        self,
        inputs: EnergyInputs,
        mode: BatteryMode,
        command: float,
        surplus: float,
        budget: float,
        reasons: list[str],
        draws: float = 0.0,
    ) -> EnergyDecision:
        last = self.last_command_w
        way = math.copysign(1.0, command) if command else 0.0
        if way * self._last_way < 0 and inputs.now - self._last_way_at < self.reverse_dwell_s:
            command, way = 0.0, 0.0  # idle: a change of direction waits for the dwell
            reasons.append("direction change waits for the dwell: idle")
        elif command * last > 0 and command <= last < command + self.deadband_w and last <= draws:
            # within the deadband, one way, and only where it imports no more (and a
            # discharge exports nothing)
            command = last
        if way:
            self._last_way, self._last_way_at = way, inputs.now
        self.last_command_w = command
        # On the way from its measured power to the command, the battery imports at most
        # the larger of both: count what the meters do not already show.
        measured_import = -self.last_power_w
        return EnergyDecision(
            mode,
            command,
            surplus,
            budget,
            max(0.0, -command - measured_import),
            max(0.0, -command, measured_import),
            tuple(reasons),
        )

    def _unavailable(self, surplus: float, reasons: list[str]) -> EnergyDecision:
        charging = max(-self.last_command_w, -self.last_power_w, 0.0) + 0.0  # no -0.0
        reasons.append(
            "battery not heard from (silent, stale or without SoC and power): no discharge "
            f"counted, {charging / 1000:.1f} kW charge assumed"
        )
        return EnergyDecision(
            BatteryMode.UNAVAILABLE,
            None,
            surplus,
            0.0,
            max(0.0, charging + self.last_power_w),
            charging,
            tuple(reasons),
        )
