"""Physics into registers and back: what each simulated Modbus device shows and applies.

Every step the site's state becomes field values (a charger's connector its
EV's currents, power, energy and IEC state; a meter its node's currents; PV,
battery and the grid operator's box their own), written only when they changed.
What the gateway wrote comes back: a charger's applied limit (its own watchdog
and fallback included) is what the EV is offered; a battery's charge and
discharge power limits are the power it runs at; a PV inverter's power limit caps its
output.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from hubgate.config.model import ModbusEndpoint
from hubgate.profiles.model import DataType, DeviceKind, IecState, Profile, Quantity
from hubgate.sim.devices import GridSignal
from hubgate.sim.engine import Simulation
from hubgate.sim.simulated_device import Clock, SimulatedDevice
from hubgate.sim.wire_values import from_physical, is_integer, to_physical

FREQUENCY_HZ = 50.0
_PHASES = ("l1", "l2", "l3")
_BITS = {DataType.U16: 16, DataType.I16: 16, DataType.U32: 32, DataType.I32: 32}
_BITS |= {DataType.U64: 64, DataType.I64: 64}


def sunspec_exponent(largest: float) -> int:
    """A scale-factor exponent at which `largest` (W or A) still fits an i16 register."""
    if largest <= 3276.7:
        return -1
    return math.ceil(math.log10(largest / 32767.0))


def state_raw(profile: Profile, state: IecState) -> str | None:
    """The first raw value the profile maps to `state` (its state field's text)."""
    if profile.states is None:
        return None
    return next((raw for raw, s in profile.states.map.items() if s is state), None)


@dataclass
class FedDevice:
    """A simulated device and the values last written to it (to skip unchanged ones)."""

    device: SimulatedDevice
    last: dict[str, float | str] = field(default_factory=dict)
    forward: Callable[[str, float | str], None] | None = None
    """Where the values go instead of `device` when another process serves it
    (`hubgate.sim.device_workers`)."""

    def has(self, quantity: Quantity) -> bool:
        """Whether the profile has this field."""
        return f"fields.{quantity}" in self.device.specs

    def put(self, quantity: Quantity, value: float | str) -> None:
        """Write a field if the profile has it and the value changed, fitted to its type."""
        if self.last.get(quantity) == value or not self.has(quantity):
            return
        self.last[quantity] = value
        if isinstance(value, float):
            value = self._fit(quantity, value)
        if self.forward is not None:
            self.forward(quantity, value)
        else:
            self.device.set(quantity, value)

    def _fit(self, quantity: Quantity, value: float) -> float:
        """Clamp to what the register can hold (an unsigned current cannot be negative)."""
        spec = self.device.spec(f"fields.{quantity}")
        if not is_integer(spec) or spec.type not in _BITS:
            return value
        exponent = self.device.exponent_at(f"fields.{quantity}")
        bits = _BITS[spec.type]
        signed = spec.type.value.startswith("i")
        low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
        raw = from_physical(spec, value, exponent)
        assert isinstance(raw, int)
        if low <= raw <= high:
            return value
        physical = to_physical(spec, max(low, min(high, raw)), exponent)
        assert isinstance(physical, float)
        return physical


def make_device(
    profile: Profile, endpoint: ModbusEndpoint, clock: Clock, *, offset: int = 0, largest: float = 0
) -> FedDevice:
    """The simulated device of a site entry; `offset` adds to the unit id (a charger's socket)."""
    device = SimulatedDevice(
        profile, clock=clock, unit=endpoint.unit + offset, exponent=sunspec_exponent(largest)
    )
    return FedDevice(device)


def feed_connector(fed: FedDevice, sim: Simulation, slot: int, energy_wh: float) -> None:
    """A charger connector's readings from its EV (in the charger's own phases)."""
    ev = sim.evs[slot]
    wiring = sim.tree.connectors[slot]
    voltage = sim.tree.voltage_v
    draw = ev.draw_a if ev is not None else 0.0
    phases = 0 if ev is None or draw <= 0 else len(wiring.phases_for(ev.phases))
    for i, name in enumerate(_PHASES):
        amps = draw if i < phases else 0.0
        fed.put(Quantity(f"voltage_{name}"), voltage)
        fed.put(Quantity(f"current_{name}"), amps)
        fed.put(Quantity(f"power_{name}"), amps * voltage)
    fed.put(Quantity.POWER_TOTAL, draw * phases * voltage)
    fed.put(Quantity.ENERGY_IMPORT, energy_wh)
    fed.put(Quantity.FREQUENCY, FREQUENCY_HZ)
    fed.put(Quantity.HARDWARE_MAX_CURRENT, wiring.max_current_a)
    fed.put(Quantity.HARDWARE_MIN_CURRENT, wiring.min_current_a)
    state = IecState.A if ev is None else IecState.C if draw > 0 else IecState.B
    fed.put(Quantity.PLUGGED, float(ev is not None))
    fed.put(Quantity.CHARGING, float(draw > 0))
    fed.put(Quantity.PHASES_ACTIVE, float(phases))
    if ev is not None:
        fed.put(Quantity.SESSION_ENERGY, ev.energy_kwh * 1000.0)
        fed.put(Quantity.SOC, ev.soc * 100.0)
    raw = state_raw(fed.device.profile, state)
    if raw is not None and fed.has(Quantity.CHARGER_STATE):
        spec = fed.device.spec(f"fields.{Quantity.CHARGER_STATE}")
        fed.put(Quantity.CHARGER_STATE, raw if spec.type is DataType.STRING else float(raw))


def connector_offer(fed: FedDevice, max_current_a: float) -> float:
    """What the charger offers the EV: its applied limit, 0 when paused, max when unlimited."""
    device = fed.device
    applied = device.applied_limit()
    if device.paused:
        return 0.0
    return max_current_a if applied is None else min(applied, max_current_a)


def feed_meter(fed: FedDevice, amps: tuple[float, float, float], voltage: float) -> float:
    """A meter's readings of its node; the power (W) for its energy counters."""
    total = 0.0
    for i, name in enumerate(_PHASES):
        fed.put(Quantity(f"voltage_{name}"), voltage)
        fed.put(Quantity(f"current_{name}"), amps[i])
        fed.put(Quantity(f"power_{name}"), amps[i] * voltage)
        total += amps[i] * voltage
    fed.put(Quantity.POWER_TOTAL, total)
    fed.put(Quantity.FREQUENCY, FREQUENCY_HZ)
    return total


def feed_energy(fed: FedDevice, import_wh: float, export_wh: float) -> None:
    """A meter's or inverter's energy counters."""
    fed.put(Quantity.ENERGY_IMPORT, import_wh)
    fed.put(Quantity.ENERGY_EXPORT, export_wh)


def feed_pv(fed: FedDevice, kw: float, amps: float, voltage: float, peak_kw: float) -> None:
    """An inverter of `peak_kw` producing `kw` (`amps` per phase); exported power counts
    negative."""
    fed.put(Quantity.INVERTER_MAX_POWER, peak_kw * 1000.0)
    for name in _PHASES:
        fed.put(Quantity(f"voltage_{name}"), voltage)
        fed.put(Quantity(f"current_{name}"), amps)
    fed.put(Quantity.POWER_TOTAL, -kw * 1000.0)
    fed.put(Quantity.PV_POWER, kw * 1000.0)
    fed.put(Quantity.FREQUENCY, FREQUENCY_HZ)
    fed.put(Quantity.INVERTER_STATE, 4.0 if kw > 0 else 2.0)


def pv_cap_kw(fed: FedDevice) -> float | None:
    """The cap the written power limit puts on an inverter's output (kW); None where none
    is in force: never written, switched off (SunSpec WMaxLim_Ena), or reverted after its
    revert timeout to a fallback of 100 % (SunSpec 123); after the timeout, the fallback
    written (SMA 41197)."""
    device = fed.device
    setpoint = device.profile.commands.power_limit
    if setpoint is None or device.profile.kind is not DeviceKind.INVERTER:
        return None
    device.poll()
    value = device.setpoints.get("power_limit")
    if value is None or not device.enabled:
        return None
    if device.failsafe_active:
        value = device.applied_limit()
        if value is None or value >= setpoint.max:
            return None
    if setpoint.percent_of is not None:
        reference = device.get(setpoint.percent_of)
        value = value / 100.0 * (reference if isinstance(reference, float) else 0.0)
    return value / 1000.0


def feed_battery(fed: FedDevice, power_kw: float, soc: float, max_charge_kw: float) -> None:
    """A battery charging at `power_kw` (negative: discharging) at `soc` (0-1)."""
    fed.put(Quantity.SOC, soc * 100.0)
    fed.put(Quantity.BATTERY_POWER, -power_kw * 1000.0)
    fed.put(Quantity.POWER_TOTAL, power_kw * 1000.0)
    fed.put(Quantity.BATTERY_STATE, 4.0 if power_kw > 0 else 3.0 if power_kw < 0 else 6.0)
    if fed.device.applied_limit() is None:
        fed.put(Quantity.BATTERY_MAX_CHARGE_POWER, max_charge_kw * 1000.0)


def battery_limits_w(fed: FedDevice) -> dict[str, float] | None:
    """The charge and discharge power limits in force, in W; None before any write.

    Limits in percent (SunSpec InWRte/OutWRte) count against the field they are a
    percentage of (WChaMax); once the device's revert timeout expired they are
    its fallback, and with the profile's enable switch off (StorCtl_Mod 0) they
    are not in force at all (an empty map).
    """
    device = fed.device
    commands = device.profile.commands
    fallback = device.profile.failsafe.fallback
    device.poll()
    limits: dict[str, float] = {}
    for name in ("charge_power_limit", "discharge_power_limit"):
        setpoint = getattr(commands, name)
        if setpoint is None or name not in device.setpoints:
            continue
        value = device.setpoints[name] or 0.0
        if device.failsafe_active and fallback is not None:
            value = fallback.default or 0.0
        if setpoint.percent_of is not None:
            reference = device.get(setpoint.percent_of)
            value = value / 100.0 * (reference if isinstance(reference, float) else 0.0)
        limits[name] = value
    if not limits:
        return None
    return limits if device.enabled else {}


def battery_setpoint_kw(fed: FedDevice) -> float | None:
    """The power the written limits ask for (positive: charging), None before any write.

    The simulated battery follows its charge and discharge power limits as a forced
    setpoint: it charges at the charge limit, or discharges at the discharge limit.
    Limits not in force (reverted to their fallback, or switched off) leave it to its
    own control, simulated as idle.
    """
    limits = battery_limits_w(fed)
    if limits is None:
        return None
    if fed.device.failsafe_active:
        return 0.0
    return (
        limits.get("charge_power_limit", 0.0) - limits.get("discharge_power_limit", 0.0)
    ) / 1000.0


def battery_charge_cap_kw(fed: FedDevice, configured_kw: float) -> float:
    """The battery's charge-power maximum: a written W charge limit, at most its rating."""
    limits = battery_limits_w(fed)
    charge = None if limits is None else limits.get("charge_power_limit")
    return configured_kw if charge is None else min(charge / 1000.0, configured_kw)


def feed_grid_operator(
    fed: FedDevice, signal: GridSignal, power_limit_kw: float, beat: int
) -> None:
    """The grid operator's box: a limit register (and heartbeat) or relay contacts
    (`GridSignal.contacts`)."""
    percent = signal.percent
    fed.put(Quantity.GRID_LIMIT_PERCENT, percent)
    fed.put(Quantity.GRID_LIMIT_POWER, percent / 100.0 * power_limit_kw * 1000.0)
    fed.put(Quantity.GRID_LIMIT_HEARTBEAT, float(beat & 0xFFFF))
    for name, closed in signal.contacts(fed.device.profile).items():
        fed.put(name, closed)
