"""A Modbus device driven by its firmware profile: the control loop's `Device` and `Charger`.

    driver = driver_for("cp-1", load_named("alfen-eve"), pool.device(endpoint))
    await driver.configure_failsafe(timeout_s=60, failsafe_current_a=6)
    reading = await driver.read()                     # every field, state mapped to IEC A-F
    applied = await driver.set_limit(16, phases=3)    # min, max, step and pause honoured

The profile's fields compile once into a `ReadPlan` (the Rust planner, under
the profile's quirks); SunSpec profiles first discover their model blocks
from the base. Values are written with the codec's `Field.encode` and read
back. Modbus failures surface as the `ModbusError`s of the link.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

import trio

from hubgate.config.model import DcConnector
from hubgate.devices import heartbeat
from hubgate.devices.derived_current import (
    PHASE_VOLTAGES,
    EnergyRate,
    currents_from_power,
    mean_voltage,
)
from hubgate.devices.errors import DeviceError, FailsafeNotAppliedError
from hubgate.devices.model import NOT_CHECKED, AppliedLimit, HeldCurrent, LimitCheck, Reading
from hubgate.devices.sensing import PHASE_CURRENTS, CycleReader
from hubgate.devices.sunspec import discover
from hubgate.modbus.codec import FieldError, FieldValue, ReadPlan, Request
from hubgate.modbus.master import ModbusDevice
from hubgate.modbus.stats import RequestStats
from hubgate.profiles.codec_fields import FUNCTION_CODES, field_of, read_plan
from hubgate.profiles.held import held_by_device, where_held
from hubgate.profiles.model import (
    DeviceKind,
    Fallback,
    Function,
    Heartbeat,
    HeartbeatStyle,
    IecState,
    Pause,
    Profile,
    Quantity,
    Register,
    Setpoint,
    Switch,
    Timeout,
    Unit,
)
from hubgate.profiles.plan import RegisterSpec, all_registers, field_specs, resolve, setpoint_phases

log = logging.getLogger(__name__)

NOMINAL_VOLTAGE_V = 230.0
"""Phase voltage assumed when a setpoint in W stands for a current in A."""

THREE_PHASES = 3


@dataclass(frozen=True)
class FailsafeSettings:
    """The device's own failsafe as read back: communication timeout and fallback limit
    (None: set on the device alone, not visible over Modbus)."""

    timeout_s: float | None
    fallback: float | None
    """In the fallback register's unit (A for chargers)."""


class ProfileDevice:
    """Any profiled device (meter, inverter, grid-operator box): reads into a `Reading`."""

    def __init__(self, device_id: str, profile: Profile, link: ModbusDevice) -> None:
        self.profile = profile
        self.link = link
        self._id = device_id
        self._blocks: dict[str, int] | None = None
        self._plan: tuple[list[Quantity], ReadPlan] | None = None
        self._warned: set[str] = set()

    @property
    def id(self) -> str:
        """The device id from the site file."""
        return self._id

    def warn_once(self, message: str, *args: object) -> None:
        """Log a warning about a fixed property of the device the first time only: it is
        checked before every command and would otherwise fill the log every cycle."""
        line = message % args
        if line not in self._warned:
            self._warned.add(line)
            log.warning("%s: %s", self.id, line)

    @property
    def link_stats(self) -> RequestStats:
        """The request statistics of its Modbus link."""
        return self.link.stats

    def cycle_reader(self, full_every: int) -> CycleReader:
        """The control loop's read: control fields every cycle, every field each
        `full_every`-th time."""
        return CycleReader(self, full_every=full_every)

    async def blocks(self) -> Mapping[str, int]:
        """SunSpec block starts, discovered once (empty for other profiles)."""
        if self._blocks is None:
            sunspec = self.profile.sunspec
            self._blocks = (
                {}
                if sunspec is None
                else await discover(self.link, sunspec, self.profile.wire_address(sunspec.base))
            )
        return self._blocks

    async def resolve(self, name: str, register: Register | Timeout | Fallback) -> RegisterSpec:
        """The wire register of a profile register (SunSpec blocks discovered)."""
        return resolve(self.profile, name, register, await self.blocks())

    @property
    def compiled_plan(self) -> tuple[list[Quantity], ReadPlan] | None:
        """The fields read and their plan, once `plan` compiled them."""
        return self._plan

    async def plan(self) -> tuple[list[Quantity], ReadPlan]:
        """The fields read and their plan, compiled on first use."""
        if self._plan is None:
            specs = field_specs(self.profile, await self.blocks())
            self._plan = ([Quantity(name) for name in specs], read_plan(self.profile, specs))
        return self._plan

    async def read(self) -> Reading:
        """Every readable field once; sentinels are None, texts go to `Reading.text`."""
        quantities, plan = await self.plan()
        return self.reading(quantities, await self.link.read_plan(plan), trio.current_time())

    def reading(self, quantities: list[Quantity], decoded: list[FieldValue], at: float) -> Reading:
        """The `Reading` of decoded plan values, taken at `at`."""
        values: dict[Quantity, float | None] = {}
        text: dict[Quantity, str] = {}
        for quantity, value in zip(quantities, decoded, strict=True):
            if isinstance(value, str):
                text[quantity] = value
            else:
                values[quantity] = None if value is None else float(value)
        return Reading(at=at, values=values, state=self._state(values, text), text=text)

    def _state(
        self, values: Mapping[Quantity, float | None], text: Mapping[Quantity, str]
    ) -> IecState | None:
        states = self.profile.states
        if states is None:
            return None
        raw = text.get(states.field)
        if raw is None:
            number = values.get(states.field)
            if number is None:
                return None
            raw = str(int(number)) if number.is_integer() else str(number)
        return states.map.get(raw.strip(), states.default)

    # -- wire helpers for the drivers that write ------------------------------------

    async def read_value(self, spec: RegisterSpec) -> FieldValue:
        """One register value, decoded (its SunSpec scale factor read with it)."""
        [value] = await self.link.read_plan(read_plan(self.profile, {spec.name: spec}))
        return value

    async def exponent(self, spec: RegisterSpec) -> int | None:
        """The SunSpec power-of-ten exponent of `spec`, read from the device; None without one."""
        if spec.scale_factor_address is None:
            return None
        [raw] = await self.link.read_registers(
            spec.scale_factor_address, 1, function=FUNCTION_CODES[spec.function]
        )
        return raw - 0x10000 if raw & 0x8000 else raw

    async def encode(self, spec: RegisterSpec, value: float) -> list[int]:
        """The registers holding `value` (with the device's SunSpec exponent)."""
        if spec.function.is_bit:
            return [int(bool(value) != spec.invert)]
        return field_of(spec).encode(value, exponent=await self.exponent(spec))

    async def write(self, spec: RegisterSpec, registers: list[int], *, multiple: bool) -> None:
        """Write raw registers (or a coil): FC16 / FC15 when `multiple`, a quirk or width says."""
        multiple = multiple or len(registers) > 1 or self.profile.quirks.multi_register_write_only
        request: Request
        if spec.function is Function.COIL:
            bits = [bool(r) for r in registers]
            request = (
                Request.WriteMultipleCoils(spec.address, bits)
                if multiple
                else Request.WriteSingleCoil(spec.address, bits[0])
            )
        elif spec.function is Function.HOLDING:
            request = (
                Request.WriteMultipleRegisters(spec.address, registers)
                if multiple
                else Request.WriteSingleRegister(spec.address, registers[0])
            )
        else:
            raise DeviceError(f"{self.profile.name}: {spec.name} is a read-only {spec.function}")
        await self.link.request(request)

    async def write_value(self, spec: RegisterSpec, value: float, *, multiple: bool) -> None:
        """Encode and write one value."""
        await self.write(spec, await self.encode(spec, value), multiple=multiple)


def _switch_name(switch: Switch, value: FieldValue) -> str | None:
    """The name of a switch's position read as `value` (None when unknown)."""
    if not isinstance(value, int | float):
        return None
    return next((name for name, raw in switch.values.items() if raw == int(value)), None)


def clamp(setpoint: Setpoint, value: float) -> float | None:
    """`value` within the setpoint's max and on its step (rounded down); None below its min."""
    if value <= 0 or value < setpoint.min:
        return None
    value = min(value, setpoint.max)
    if setpoint.step is not None:
        value = round(math.floor(value / setpoint.step + 1e-9) * setpoint.step, 9)
    return None if value < setpoint.min or value <= 0 else value


class ProfileCharger(ProfileDevice):
    """A charger with a current (A) or power (W) setpoint: the control loop's `Charger`.

    0 A, or less than the setpoint's minimum, pauses: a 0 write where 0 means
    pause, the enable switch otherwise. A W setpoint is `current * phases *
    voltage_v`. `phases` switches 1p/3p where the profile has a phase switch.

    A DC connector (`dc`, the site file's table) is commanded in DC power, the AC
    current times `DcConnector.dc_w` (efficiency and power factor: below the AC power
    whichever side the charger limits), and its AC phase currents are derived from the
    power it reports when it measures none (`DcConnector.ac_current_a`). An AC charger
    that measures no current gets it from its power, else its energy register, on the
    phases in use (`hubgate.devices.derived_current`, with its accuracy).
    """

    def __init__(
        self,
        device_id: str,
        profile: Profile,
        link: ModbusDevice,
        *,
        voltage_v: float = NOMINAL_VOLTAGE_V,
        dc: DcConnector | None = None,
        lease_s: float | None = None,
    ) -> None:
        super().__init__(device_id, profile, link)
        self.lease_s = lease_s  # the timeout hubgate configures it with (heartbeat_period_s)
        commands = profile.commands
        setpoint = commands.current_limit or commands.power_limit
        if setpoint is None:
            raise DeviceError(f"{profile.name} has no current_limit or power_limit command")
        self.setpoint = setpoint
        self._setpoint_name = "current_limit" if commands.current_limit else "power_limit"
        self.voltage_v = voltage_v
        self.dc = dc
        if dc is not None and self.setpoint.unit is not Unit.WATT:
            raise DeviceError(f"{profile.name}: a DC connector needs a setpoint in W, not A")
        self._derives_currents = not PHASE_CURRENTS & profile.fields.keys()
        self._energy_rate = EnergyRate()
        self._voltage_v = voltage_v
        """The phase voltage last measured (read in full reads only), else nominal."""
        self._commanded_phases = THREE_PHASES
        self._registers = {path: spec for path, (_, spec) in all_registers(profile).items()}
        self._written: float | None = None
        self._enabled: bool | None = None
        self._phases: int | None = None
        self._commands = trio.Lock()
        """One command sequence at a time: a heartbeat never re-writes a stale setpoint."""
        self._beats = 0
        self._read_at = -math.inf
        """When a read it answered began (the cycle's): a traffic heartbeat is fed by it."""
        self._validity_s = 0.0  # the longest limit validity read (Alfen 1208's countdown)
        self._read_back: tuple[list[str], ReadPlan | None] | None = None
        self.failsafe: FailsafeSettings | None = None
        """What `configure_failsafe` read back (None before it ran, or without failsafe)."""

    # -- limits -----------------------------------------------------------------

    def reading(self, quantities: list[Quantity], decoded: list[FieldValue], at: float) -> Reading:
        """`ProfileDevice.reading`, with the phase currents of a charger that measures
        none derived from its power (a DC connector's: `DcConnector.ac_current_a`)."""
        reading = super().reading(quantities, decoded, at)
        self._read_at = max(self._read_at, at)
        if Quantity.LIMIT_VALIDITY not in reading.older:
            validity = reading.values.get(Quantity.LIMIT_VALIDITY) or 0.0
            self._validity_s = max(self._validity_s, validity)
        if not self._derives_currents:
            return reading
        values = reading.values
        self._voltage_v = mean_voltage(
            tuple(values.get(q) for q in PHASE_VOLTAGES), self._voltage_v
        )
        power_w = values.get(Quantity.POWER_TOTAL)
        energy_wh = values.get(Quantity.ENERGY_IMPORT)
        if power_w is None and energy_wh is not None:
            power_w = self._energy_rate.sample(at, energy_wh)
        if power_w is None:
            return reading
        if self.dc is not None:
            current_a = self.dc.ac_current_a(max(power_w, 0.0), self.voltage_v)
            currents: tuple[float, float, float] = (current_a, current_a, current_a)
        else:
            active = values.get(Quantity.PHASES_ACTIVE)
            phases = int(active) if active is not None and active in (1, 2, 3) else None
            currents = currents_from_power(
                power_w, self._voltage_v, phases or self._commanded_phases
            )
        derived = {
            Quantity.CURRENT_L1: currents[0],
            Quantity.CURRENT_L2: currents[1],
            Quantity.CURRENT_L3: currents[2],
        }
        return replace(reading, values={**values, **derived})

    def _in_setpoint_unit(self, current_a: float, phases: int) -> float:
        if self.dc is not None:
            return self.dc.dc_w(current_a, self.voltage_v)
        if self.setpoint.unit is Unit.WATT:
            return current_a * phases * self.voltage_v
        return current_a

    def _in_amperes(self, value: float, phases: int) -> float:
        if self.dc is not None:
            return self.dc.ac_current_a(value, self.voltage_v)
        if self.setpoint.unit is Unit.WATT:
            return value / (phases * self.voltage_v)
        return value

    async def _setpoint_specs(self) -> list[RegisterSpec]:
        first = await self.resolve(self._setpoint_name, self.setpoint)
        stride = self.setpoint.phase_stride or 0
        return [
            replace(first, address=first.address + i * stride)
            for i, _ in enumerate(setpoint_phases(self.setpoint))
        ]

    async def _write_setpoint(self, value: float) -> None:
        for spec in await self._setpoint_specs():
            await self.write_value(spec, value, multiple=self.setpoint.write == "multiple")
        self._written = value

    async def _switch(self, switch: Switch, name: str, path: str) -> None:
        await self.write(
            self._registers[path], [switch.values[name]], multiple=switch.write == "multiple"
        )

    async def set_limit(self, current_a: float, phases: int) -> AppliedLimit:
        """Allow `current_a` per phase on `phases` phases; below the minimum pauses."""
        if phases not in (1, 2, 3):
            raise ValueError(f"phases is 1, 2 or 3, not {phases}")
        async with self._commands:
            return await self._set_limit(current_a, phases)

    async def _set_limit(self, current_a: float, phases: int) -> AppliedLimit:
        commands = self.profile.commands
        self._commanded_phases = phases
        if commands.phase_switch is not None and phases in (1, 3) and phases != self._phases:
            await self._switch(commands.phase_switch, f"{phases}p", "commands.phase_switch")
            self._phases = phases
        value = clamp(self.setpoint, self._in_setpoint_unit(current_a, phases))
        if value is None:
            await self._pause()
        else:
            await self._write_setpoint(value)
            if commands.pause is Pause.ENABLE and self._enabled is not True:
                assert commands.enable is not None
                await self._switch(commands.enable, "on", "commands.enable")
                self._enabled = True
        return await self.applied_limit(phases)

    async def _pause(self) -> None:
        commands = self.profile.commands
        if commands.pause is Pause.NONE:  # no pause: the lowest it takes (it still draws)
            await self._write_setpoint(self.setpoint.min)
            return
        if commands.pause is Pause.ZERO:
            await self._write_setpoint(0.0)
            return
        assert commands.enable is not None
        await self._switch(commands.enable, "off", "commands.enable")
        self._enabled = False

    async def _read_back_plan(self) -> tuple[list[str], ReadPlan | None]:
        """What `applied_limit` reads (setpoints or the applied-limit field, enable and phase
        switches), compiled once into one plan: adjacent registers come in one request."""
        if self._read_back is None:
            specs: dict[str, RegisterSpec] = {}
            if self.setpoint.readable:
                for i, spec in enumerate(await self._setpoint_specs()):
                    specs[f"setpoint{i}"] = spec
            elif (field := self.profile.fields.get(Quantity.APPLIED_CURRENT_LIMIT)) is not None:
                name = Quantity.APPLIED_CURRENT_LIMIT.value
                specs["applied"] = await self.resolve(name, field)
            commands = self.profile.commands
            if commands.pause is Pause.ENABLE:
                specs["enable"] = self._registers["commands.enable"]
            if commands.phase_switch is not None:
                specs["phase_switch"] = self._registers["commands.phase_switch"]
            plan = read_plan(self.profile, specs) if specs else None
            self._read_back = (list(specs), plan)
        return self._read_back

    async def applied_limit(self, phases: int) -> AppliedLimit:
        """The limit in force, read back: the setpoint, else the applied-limit field,
        else (a write-only device) the last value written."""
        names, plan = await self._read_back_plan()
        read = (
            {} if plan is None else dict(zip(names, await self.link.read_plan(plan), strict=True))
        )
        numbers = [
            float(v)
            for name, v in read.items()
            if name.startswith("setpoint") or name == "applied"
            if isinstance(v, int | float)
        ]
        value_a: float | None
        if self.setpoint.readable:
            value_a = self._in_amperes(min(numbers), phases) if numbers else None
        elif "applied" in read:
            value_a = numbers[0] if numbers else None
        else:
            value_a = None if self._written is None else self._in_amperes(self._written, phases)
        commands = self.profile.commands
        paused = value_a is None or self._in_setpoint_unit(value_a, phases) < self.setpoint.min
        if commands.pause is Pause.ENABLE:
            assert commands.enable is not None
            paused = paused or _switch_name(commands.enable, read["enable"]) == "off"
        if commands.phase_switch is not None:
            switched = _switch_name(commands.phase_switch, read["phase_switch"])
            phases = THREE_PHASES if switched == "3p" else 1 if switched == "1p" else phases
        return AppliedLimit(
            current_a=0.0 if paused or value_a is None else value_a,
            phases=phases,
            paused=paused,
            at=trio.current_time(),
        )

    # -- failsafe ---------------------------------------------------------------

    @property
    def device_failsafe(self) -> bool:
        """Whether the charger falls back on its own when hubgate stops commanding it."""
        return self.profile.failsafe.present

    def fixed_failsafe_a(self, failsafe_current_a: float) -> float | None:
        """What it falls back to whatever it is asked (None: any failsafe current, 0 A
        included): a fallback its device holds (`profiles.held`) at the value last read,
        until then at the most its setpoint allows (an installer may have set anything up
        to it); else from its profile (`Failsafe.fixed_current_a`)."""
        if held_by_device(self.profile) is None:
            return self.profile.failsafe.fixed_current_a(failsafe_current_a)
        held = self.held_fallback()
        return self._in_amperes(self.setpoint.max, THREE_PHASES) if held is None else held.current_a

    def held_fallback(self) -> HeldCurrent | None:
        """The fallback current its device holds, as `configure_failsafe` last read it (at
        connect, after a reconnect, and when the control loop asks again), and where it is
        set; None before the first read, or where hubgate sets it (`HeldFallback`)."""
        return self._held_current(None if self.failsafe is None else self.failsafe.fallback)

    async def read_held_fallback(self) -> HeldCurrent | None:
        """Read the fallback current its device holds, alone, writing nothing (`hubgate
        config check --read-fallbacks`); None where it holds none, or reads no number."""
        fallback = held_by_device(self.profile)
        if fallback is None:
            return None
        value = await self.read_value(await self.resolve("fallback", fallback))
        return self._held_current(float(value) if isinstance(value, int | float) else None)

    def _held_current(self, read: float | None) -> HeldCurrent | None:
        fallback = held_by_device(self.profile)
        if fallback is None or read is None or not 0 <= read < math.inf:
            return None  # a NaN read (Alfen's unavailable register) says nothing
        return HeldCurrent(read, where_held(fallback))

    async def configure_failsafe(self, timeout_s: float, failsafe_current_a: float) -> None:
        """Write the device's communication timeout and fallback current where it lets us
        (0 A as the profile's `pause_value`), then read both back; nothing is written when
        a first read shows both in place already (`_in_place`). `FailsafeNotAppliedError`
        when a write did not hold or 0 A has no value."""
        failsafe = self.profile.failsafe
        if not failsafe.present:
            log.info("%s: no device-side failsafe (%s)", self.id, failsafe.reason)
            return
        assert failsafe.timeout is not None
        assert failsafe.fallback is not None
        fallback = failsafe_current_a
        pause = failsafe.fallback.pause_value
        if fallback <= 0 and failsafe.fallback.writable and failsafe.fallback.address is not None:
            if pause is None:
                raise FailsafeNotAppliedError(
                    f"{self.link.name}: its profile names no fallback value that pauses: "
                    "0 A cannot be its failsafe current"
                )
            fallback = pause
        elif failsafe.fallback.unit is Unit.WATT:
            fallback *= THREE_PHASES * self.voltage_v
        wanted: dict[str, tuple[Timeout | Fallback, float]] = {
            "timeout": (failsafe.timeout, timeout_s),
            "fallback": (failsafe.fallback, fallback),
        }
        async with self._commands:
            self.failsafe = await self._in_place(wanted) or FailsafeSettings(
                timeout_s=await self._configure("timeout", failsafe.timeout, timeout_s),
                fallback=await self._configure("fallback", failsafe.fallback, fallback),
            )
            if failsafe.heartbeat and failsafe.heartbeat.style in heartbeat.FED_BY_A_WRITE:
                await self._beat(failsafe.heartbeat)  # a lapsed watchdog takes no setpoint

    async def _in_place(
        self, wanted: Mapping[str, tuple[Timeout | Fallback, float]]
    ) -> FailsafeSettings | None:
        """The settings when the device holds the wanted ones already (a restart, or a new
        leader taking over from the gateway that set them): every register read back in
        one plan (one request where they are near), nothing written. None when a write is
        due, or the check needs more than a read (a timeout enable register, a SunSpec
        scale factor)."""
        specs: dict[str, RegisterSpec] = {}
        for name, (register, _) in wanted.items():
            if register.address is None:
                continue
            if isinstance(register, Timeout) and register.enable_address is not None:
                return None
            spec = await self.resolve(name, register)
            if register.read_at is not None:
                spec = await self.resolve(f"{name} read-back", register.read_at)
            if spec.scale_factor_address is not None:
                return None
            specs[name] = spec
        read = await self.link.read_plan(read_plan(self.profile, specs)) if specs else []
        got = dict(zip(specs, read, strict=True))
        settings: dict[str, float | None] = {}
        for name, (register, value) in wanted.items():
            if name not in got:
                settings[name] = self._fixed(name, register, value)
                continue
            try:  # to half a step: a value one step off is a different setting
                half_step = abs(specs[name].scale) / 2
                settings[name] = self._held(name, register, value, got[name], half_step)
            except FailsafeNotAppliedError:
                return None
        return FailsafeSettings(timeout_s=settings["timeout"], fallback=settings["fallback"])

    def _fixed(self, name: str, register: Timeout | Fallback, wanted: float) -> float | None:
        """A setting with no register: the profile's documented value (None: unknown)."""
        default = register.default_s if isinstance(register, Timeout) else register.default
        if default is None:
            self.warn_once("the %s is set on the device alone, not %s", name, wanted)
        elif not math.isclose(default, wanted):
            self.warn_once("the %s is fixed at %s, not %s", name, default, wanted)
        return default

    def _held(
        self,
        name: str,
        register: Timeout | Fallback,
        wanted: float,
        got: FieldValue,
        tolerance: float,
    ) -> float:
        """The setting read back as `got`; `FailsafeNotAppliedError` when a register hubgate
        writes does not hold `wanted` within `tolerance` (one it cannot write holds what it
        holds; a fallback its device holds is not asked for: the control loop counts what
        is read, and says what it means for the site)."""
        if not isinstance(got, int | float):
            raise FailsafeNotAppliedError(f"{self.link.name}: the {name} reads as {got!r}")
        if not math.isclose(float(got), wanted, rel_tol=1e-6, abs_tol=tolerance):
            if register.writable:
                raise FailsafeNotAppliedError(
                    f"{self.link.name}: wrote {wanted} to the {name}, read back {got}"
                )
            if register is not held_by_device(self.profile):
                self.warn_once("the %s is fixed at %s, not %s", name, got, wanted)
        return float(got)

    async def _configure(
        self, name: str, register: Timeout | Fallback, wanted: float
    ) -> float | None:
        if register.address is None:
            return self._fixed(name, register, wanted)
        spec = await self.resolve(name, register)
        if isinstance(register, Timeout) and register.enable_address is not None:
            enable = self._registers["failsafe.timeout.enable"]
            await self.write_value(enable, register.enable_value, multiple=False)
        if register.writable:
            try:
                registers = await self.encode(spec, wanted)
            except FieldError as exc:
                raise FailsafeNotAppliedError(
                    f"{self.link.name}: the {name} register cannot hold {wanted}: {exc}"
                ) from exc
            await self.write(spec, registers, multiple=False)
        if register.read_at is not None:  # the written register is write-only
            spec = await self.resolve(f"{name} read-back", register.read_at)
        got = await self.read_value(spec)
        resolution = abs(spec.scale) * 10.0 ** (await self.exponent(spec) or 0)
        return self._held(name, register, wanted, got, resolution)

    @property
    def limit_check(self) -> LimitCheck:
        """Not checked: its setpoint is read back after each write (`applied_limit`)."""
        return NOT_CHECKED

    @property
    def heartbeat_period_s(self) -> float | None:
        """`devices.heartbeat.period_s` for its profile, the timeout in force, its validity."""
        in_force = self.failsafe.timeout_s if self.failsafe else None
        return heartbeat.period_s(self.profile.failsafe, in_force, self.lease_s, self._validity_s)

    async def heartbeat(self) -> None:
        """Feed the device's watchdog in the profile's style."""
        beat = self.profile.failsafe.heartbeat
        if beat is not None:
            async with self._commands:
                await self._beat(beat)

    async def _beat(self, beat: Heartbeat) -> None:
        style = beat.style
        if style in (HeartbeatStyle.TOKEN, HeartbeatStyle.TOGGLE, HeartbeatStyle.COUNTER):
            self._beats += 1
            value = {
                HeartbeatStyle.TOKEN: beat.value or 0,
                HeartbeatStyle.TOGGLE: self._beats % 2,
                HeartbeatStyle.COUNTER: self._beats & 0xFFFF,
            }[style]
            await self.write(self._registers["failsafe.heartbeat"], [value], multiple=False)
        elif style is HeartbeatStyle.SETPOINT_REWRITE:
            if self._written is not None:  # nothing to re-write before the first limit
                await self._write_setpoint(self._written)
        elif style is HeartbeatStyle.TIMEOUT_REWRITE:
            timeout = self.profile.failsafe.timeout
            assert timeout is not None
            seconds = self.failsafe.timeout_s if self.failsafe else timeout.default_s
            if seconds is None:  # not configured yet and no documented default: nothing to feed
                return
            await self.write_value(await self.resolve("timeout", timeout), seconds, multiple=False)
        else:  # traffic: any request it answers feeds it, the control cycle's reads among them
            period_s = self.heartbeat_period_s
            assert period_s is not None
            if trio.current_time() - self._read_at < period_s / 2:
                return  # a read answered within half a period: no request of its own
            _, plan = await self.plan()
            await self.link.request(plan.requests[0])


class ProfileBattery(ProfileDevice):
    """A battery (or hybrid inverter) with charge and discharge power setpoints."""

    async def set_power_limits(
        self, *, charge_w: float | None = None, discharge_w: float | None = None
    ) -> dict[str, float]:
        """Write the given limits (clamped to max and step; below min is 0) and read them back."""
        commands = self.profile.commands
        applied: dict[str, float] = {}
        for name, wanted in (
            ("charge_power_limit", charge_w),
            ("discharge_power_limit", discharge_w),
        ):
            if wanted is None:
                continue
            setpoint: Setpoint | None = getattr(commands, name)
            if setpoint is None:
                raise DeviceError(f"{self.profile.name} has no {name} command")
            spec = await self.resolve(name, setpoint)
            value = clamp(setpoint, wanted) or 0.0
            await self.write_value(spec, value, multiple=setpoint.write == "multiple")
            read = await self.read_value(spec) if setpoint.readable else value
            applied[name] = float(read) if isinstance(read, int | float) else value
        return applied


def driver_for(
    device_id: str,
    profile: Profile,
    link: ModbusDevice,
    *,
    voltage_v: float = NOMINAL_VOLTAGE_V,
    dc: DcConnector | None = None,
    lease_s: float | None = None,
) -> ProfileDevice:
    """The driver a profile calls for: charger (`voltage_v`, `dc`, `lease_s`: see
    `ProfileCharger`), battery with power setpoints, or read-only."""
    commands = profile.commands
    if profile.kind is DeviceKind.CHARGER and (commands.current_limit or commands.power_limit):
        return ProfileCharger(device_id, profile, link, voltage_v=voltage_v, dc=dc, lease_s=lease_s)
    if commands.charge_power_limit or commands.discharge_power_limit:
        return ProfileBattery(device_id, profile, link)
    return ProfileDevice(device_id, profile, link)
