"""Simulated devices: a pymodbus server laid out and behaving as a profile says.

`SimulatedDevice` holds the register memory (encoded with pymodbus's own
conversions), validates writes the way the profile describes (min, max, step,
what 0 means, below-minimum, heartbeat tokens) and runs the device's watchdog:
no heartbeat within the timeout puts it on its fallback. Time is injected
(`clock`), so tests step it.

A `limit_validity` field (Alfen 1208, "remaining validity" of the Modbus max current)
counts the watchdog down in whole seconds as the station does: from its validity time at
each setpoint write to 0, when the socket runs at its safe current (1212) until the next
write (Alfen's Modbus manual; ThaStealth/alfen_modbus README: "the charger drops into safe
current mode" when its timer runs out). Before the first write it holds what it was set to
(0 unless a test sets it), as a station's limit registers read 0 before they are configured
(alfen-eve.toml's heartbeat notes, from evcc).
The validity time is
set on the station alone (`device_timeout_s`; evcc-io/evcc#12492: one found at 10 s, not
the documented 60 s), as is the safe current: tests set it with `set("safe_current", 32)`
(ThaStealth/alfen_modbus#38: 8 A set from an app). `hubgate.sim.modbus_box` serves it (`serve` runs the
pymodbus asyncio server in a background thread on 127.0.0.1).

SunSpec profiles present "SunS" at the base and the chain of blocks (the
first id of each block), ended by 0xFFFF.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from pymodbus.constants import ExcCodes
from pymodbus.simulator import DataType as SimType
from pymodbus.simulator import SimData, SimDevice

from hubgate.profiles.model import (
    BelowMin,
    Function,
    HeartbeatStyle,
    Profile,
    Quantity,
    Register,
    Setpoint,
    Unit,
    ZeroMeans,
)
from hubgate.profiles.plan import (
    SUNS_MARKER,
    SUNSPEC_END,
    RegisterSpec,
    all_registers,
    resolve,
    setpoint_phases,
    sunspec_layout,
)
from hubgate.sim.wire_values import (
    decode_raw,
    encode_raw,
    from_physical,
    reorder,
    to_physical,
)

Clock = Callable[[], float]
Table = tuple[int, Function]
"""(unit id, function): one address space of the device."""

_FC_FUNCTION = {
    1: Function.COIL,
    5: Function.COIL,
    15: Function.COIL,
    2: Function.DISCRETE,
    3: Function.HOLDING,
    6: Function.HOLDING,
    16: Function.HOLDING,
    4: Function.INPUT,
}
_SINGLE_WRITES = (5, 6)
_GAP_FILL = 16
"""Undefined registers up to this many between two defined ones read as 0 (unless no_gaps)."""


UNDOCUMENTED_TIMEOUT_S = 20.0
"""The timeout the twin starts with when the profile gives no default (the documentation
does not say: a real device holds whatever it was left at)."""

PERCENT_EXPONENT = -1
"""The SunSpec exponent of percentages (SoC, InWRte): 0.1 % resolution whatever the power's."""


def _percent_scale_factors(profile: Profile) -> set[int]:
    """Addresses of the scale-factor registers of values given in percent."""
    registers: dict[str, Register] = {str(q): f for q, f in profile.fields.items()}
    registers |= profile.commands.setpoints
    return {
        spec.scale_factor_address
        for name, register in registers.items()
        if register.unit is Unit.PERCENT
        and (spec := resolve(profile, name, register)).scale_factor_address is not None
    }


@dataclass
class _Writable:
    """A register the device accepts writes to, and what a write means."""

    kind: str
    spec: RegisterSpec
    setpoint: Setpoint | None = None


class SimulatedDevice:
    """The device a profile describes, as register memory plus behaviour."""

    def __init__(
        self,
        profile: Profile,
        *,
        clock: Clock = time.monotonic,
        exponent: int = -1,
        unit: int | None = None,
    ):
        """`exponent` is the value of every SunSpec scale-factor register but those of
        percentages (`PERCENT_EXPONENT`); `unit` the unit id the device answers on
        (default: the profile's)."""
        self.profile = profile
        self.exponent = exponent
        self._percent_scale_factors = _percent_scale_factors(profile)
        self._clock = clock
        self._lock = threading.Lock()
        self.unit = profile.transport.unit if unit is None else unit
        self.memory: dict[Table, dict[int, int]] = {}
        self.specs: dict[str, tuple[int, RegisterSpec]] = {
            path: (self.unit if override is None else override, spec)
            for path, (override, spec) in all_registers(profile).items()
        }
        for unit, spec in self.specs.values():
            self._define(unit, spec)
        self._lay_out_sunspec()
        self.writable = self._writables()
        self.setpoints: dict[str, float | None] = {}
        self.enabled = True
        self.phases: str | None = None
        self.failsafe_active = False
        self.device_timeout_s: float | None = None
        """A timeout set on the device alone, not in a register (Alfen's 'Validity time'
        in ACE); None: the profile's `default_s`."""
        self._armed = False
        self._last_feed = clock()
        self._toggle: int | None = None
        self._initial_values()

    # -- layout -----------------------------------------------------------------

    def _table(self, unit: int, function: Function) -> dict[int, int]:
        return self.memory.setdefault((unit, function), {})

    def _define(self, unit: int, spec: RegisterSpec) -> None:
        table = self._table(unit, spec.function)
        for address in range(spec.address, spec.end):
            table.setdefault(address, 0)
        if spec.scale_factor_address is not None:
            percent = spec.scale_factor_address in self._percent_scale_factors
            table[spec.scale_factor_address] = (
                PERCENT_EXPONENT if percent else self.exponent
            ) & 0xFFFF

    def _lay_out_sunspec(self) -> None:
        sunspec = self.profile.sunspec
        if sunspec is None:
            return
        table = self._table(self.unit, Function.HOLDING)
        base = self.profile.wire_address(sunspec.base)
        table[base], table[base + 1] = SUNS_MARKER
        end = base + len(SUNS_MARKER)
        for name, start in sunspec_layout(self.profile).items():
            block = sunspec.blocks[name]
            table[start], table[start + 1] = block.ids[0], block.length
            for address in range(start + 2, start + 2 + block.length):
                table.setdefault(address, 0)
            end = start + 2 + block.length
        table[end], table[end + 1] = SUNSPEC_END, 0

    def _writables(self) -> dict[Table, dict[int, _Writable]]:
        found: dict[Table, dict[int, _Writable]] = {}

        def add(path: str, kind: str, setpoint: Setpoint | None = None) -> None:
            unit, spec = self.specs[path]
            found.setdefault((unit, spec.function), {})[spec.address] = _Writable(
                kind, spec, setpoint
            )

        for name, setpoint in self.profile.commands.setpoints.items():
            for suffix in setpoint_phases(setpoint):
                add(f"commands.{name}{suffix}", f"{name}{suffix}", setpoint)
        for name in ("enable", "phase_switch"):
            if f"commands.{name}" in self.specs:
                add(f"commands.{name}", name)
        failsafe = self.profile.failsafe
        for name, register in (("timeout", failsafe.timeout), ("fallback", failsafe.fallback)):
            if register is not None and register.writable and f"failsafe.{name}" in self.specs:
                add(f"failsafe.{name}", name)
        if "failsafe.heartbeat" in self.specs:
            add("failsafe.heartbeat", "heartbeat")
        if "failsafe.timeout.enable" in self.specs:
            add("failsafe.timeout.enable", "timeout_enable")
        return found

    def _initial_values(self) -> None:
        for i, ident in enumerate(self.profile.identification):
            self._store(f"identification[{i}]", ident.example)
        failsafe = self.profile.failsafe
        timeout = failsafe.timeout.default_s if failsafe.timeout else None
        fallback = failsafe.fallback.default if failsafe.fallback else None
        for name, value in (
            ("timeout", UNDOCUMENTED_TIMEOUT_S if timeout is None else timeout),
            ("fallback", fallback or 0.0),
        ):
            for path in (f"failsafe.{name}", f"failsafe.{name}.read"):
                if path in self.specs:
                    self._store(path, value)

    # -- values -----------------------------------------------------------------

    def exponent_at(self, path: str) -> int:
        """The power-of-ten exponent a register's value is stored at (0 without one)."""
        return self._exponent_of(*self.specs[path])

    def _exponent_of(self, unit: int, spec: RegisterSpec) -> int:
        if spec.scale_factor_address is None:
            return 0
        raw = self._table(unit, spec.function)[spec.scale_factor_address]
        return raw - 0x10000 if raw & 0x8000 else raw

    def _store(self, path: str, value: float | str) -> None:
        unit, spec = self.specs[path]
        table = self._table(unit, spec.function)
        if spec.function.is_bit:
            table[spec.address] = int(bool(value) != spec.invert)
            return
        raw = from_physical(spec, value, self._exponent_of(unit, spec))
        for offset, register in enumerate(encode_raw(spec, raw)):
            table[spec.address + offset] = register

    def _load(self, path: str) -> float | str | None:
        unit, spec = self.specs[path]
        table = self._table(unit, spec.function)
        if spec.function.is_bit:
            return float(bool(table[spec.address]) != spec.invert)
        registers = [table[a] for a in range(spec.address, spec.end)]
        return to_physical(spec, decode_raw(spec, registers), self._exponent_of(unit, spec))

    def set(self, quantity: Quantity | str, value: float | str | None) -> None:
        """Set a measured value (what the site simulator drives); None: not available.

        "Not available" writes the field's first sentinel, as a device does.
        """
        path = f"fields.{quantity}"
        with self._lock:
            if value is not None:
                self._store(path, value)
                return
            unit, spec = self.specs[path]
            if not spec.sentinel:
                raise ValueError(f"{quantity} of {self.profile.name} has no sentinel")
            words = [(spec.sentinel[0] >> (16 * i)) & 0xFFFF for i in reversed(range(spec.count))]
            table = self._table(unit, spec.function)
            for offset, register in enumerate(reorder(spec.order, words)):
                table[spec.address + offset] = register

    def get(self, quantity: Quantity | str) -> float | str | None:
        """A field's current value, decoded."""
        return self.value(f"fields.{quantity}")

    def value(self, path: str) -> float | str | None:
        """Any register's current value by its profile path ("failsafe.timeout"), decoded."""
        with self._lock:
            return self._load(path)

    @property
    def paused(self) -> bool:
        """Whether the device is not charging because hubgate paused it."""
        if not self.enabled:
            return True
        limit = self.applied_limit()
        return limit is not None and limit < self._minimum()

    def _minimum(self) -> float:
        limit = self.profile.commands.current_limit or self.profile.commands.power_limit
        return limit.min if limit is not None else 0.0

    def applied_limit(self) -> float | None:
        """The limit in force: the setpoint (the lowest phase of a per-phase one), or the
        fallback once the watchdog expired; None when unlimited or never set."""
        with self._lock:
            self._check_watchdog()
            return self._applied()

    def _applied(self) -> float | None:
        if self.failsafe_active:
            return self._fallback_value()
        name = next(iter(self.profile.commands.setpoints), None)
        if name is None or name not in self.setpoints:
            return None
        phases = [v for k, v in self.setpoints.items() if k.split(".")[0] == name]
        return None if None in phases else min(v for v in phases if v is not None)

    def _fallback_value(self) -> float:
        fallback = self.profile.failsafe.fallback
        assert fallback is not None
        if "failsafe.fallback" in self.specs:
            value = self._load("failsafe.fallback")
            assert isinstance(value, float)
            return 0.0 if value == fallback.pause_value else value
        return fallback.default or 0.0

    # -- watchdog ---------------------------------------------------------------

    def timeout_s(self) -> float | None:
        """The watchdog's timeout in force; None when it is off."""
        timeout = self.profile.failsafe.timeout
        if timeout is None:
            return None
        if timeout.enable_address is not None:
            enabled = self._load("failsafe.timeout.enable")
            if enabled != timeout.enable_value:
                return None
        if "failsafe.timeout" in self.specs:
            value = self._load("failsafe.timeout")
            assert isinstance(value, float)
            return value or None  # 0 disables the watchdog
        if self.device_timeout_s is not None:
            return self.device_timeout_s or None
        if timeout.default_s is None:  # set on the device alone
            return UNDOCUMENTED_TIMEOUT_S
        return timeout.default_s or None

    def _feed(self) -> None:
        """Restart the watchdog; once on its fallback, only a new setpoint lifts it."""
        self._armed = True
        self._last_feed = self._clock()

    def _check_watchdog(self) -> None:
        timeout = self.timeout_s()
        lapsed = timeout is not None and self._clock() - self._last_feed > timeout
        if self._armed and lapsed and not self.failsafe_active:
            self.failsafe_active = True
            self._publish_applied()
        if self._armed and "fields.limit_validity" in self.specs:
            self._store("fields.limit_validity", self._validity_s(timeout))

    def _validity_s(self, timeout: float | None) -> float:
        """The whole seconds left before the watchdog runs out (0: out, or none)."""
        if timeout is None or self.failsafe_active:
            return 0.0
        return float(max(math.ceil(timeout - (self._clock() - self._last_feed)), 0))

    def poll(self) -> None:
        """Let the watchdog look at the clock (also done on every request)."""
        with self._lock:
            self._check_watchdog()

    def _publish_applied(self) -> None:
        if "fields.applied_current_limit" in self.specs:
            self._store("fields.applied_current_limit", self._applied() or 0.0)

    # -- requests ---------------------------------------------------------------

    def _check_setpoint(self, setpoint: Setpoint, value: float) -> float | ExcCodes | None:
        """The limit a write sets (None: no limit), or the exception it earns."""
        if value == 0:
            if setpoint.zero_means is ZeroMeans.INVALID:
                return ExcCodes.ILLEGAL_VALUE
            return None if setpoint.zero_means is ZeroMeans.NO_LIMIT else 0.0
        if value < 0 or value > setpoint.max + 1e-9:
            return ExcCodes.ILLEGAL_VALUE
        if value < setpoint.min and setpoint.below_min is BelowMin.REJECT:
            return ExcCodes.ILLEGAL_VALUE
        if setpoint.step is not None:
            steps = value / setpoint.step
            if abs(steps - round(steps)) > 1e-6:
                return ExcCodes.ILLEGAL_VALUE
        return value

    def _write(self, table: Table, fc: int, address: int, values: list[int]) -> ExcCodes | None:
        target = self.writable.get(table, {}).get(address)
        if target is None:
            return ExcCodes.ILLEGAL_ADDRESS
        spec = target.spec
        multiple_only = self.profile.quirks.multi_register_write_only or (
            target.setpoint is not None and target.setpoint.write == "multiple"
        )
        if fc in _SINGLE_WRITES and multiple_only:
            return ExcCodes.ILLEGAL_FUNCTION
        if len(values) != spec.count:
            return ExcCodes.ILLEGAL_VALUE
        raw = [int(v) for v in values]
        decoded = to_physical(spec, decode_raw(spec, raw), self._exponent_of(table[0], spec))
        if spec.function.is_bit:
            decoded = float(raw[0])
        assert isinstance(decoded, float)
        outcome = self._apply(target, decoded)
        if outcome is None:
            memory = self._table(*table)
            for offset, register in enumerate(raw):
                memory[address + offset] = register
            if f"failsafe.{target.kind}.read" in self.specs:  # a write-only register's echo
                self._store(f"failsafe.{target.kind}.read", decoded)
        return outcome

    def _apply(self, target: _Writable, value: float) -> ExcCodes | None:
        failsafe = self.profile.failsafe
        style = failsafe.heartbeat.style if failsafe.heartbeat else None
        if target.setpoint is not None:
            limit = self._check_setpoint(target.setpoint, value)
            if isinstance(limit, ExcCodes):
                return limit
            self.setpoints[target.kind] = limit
            self.failsafe_active = False
            if style is HeartbeatStyle.SETPOINT_REWRITE or not self._armed:
                self._feed()
        elif target.kind in ("enable", "phase_switch"):
            switch = getattr(self.profile.commands, target.kind)
            names = {raw: name for name, raw in switch.values.items()}
            if int(value) not in names:
                return ExcCodes.ILLEGAL_VALUE
            if target.kind == "enable":
                self.enabled = names[int(value)] == "on"
            else:
                self.phases = names[int(value)]
        elif target.kind == "heartbeat":
            beat = failsafe.heartbeat
            assert beat is not None
            if beat.style is HeartbeatStyle.TOKEN and int(value) != beat.value:
                return ExcCodes.ILLEGAL_VALUE
            if beat.style is HeartbeatStyle.TOGGLE and int(value) == self._toggle:
                return None  # the same value again is no heartbeat
            self._toggle = int(value)
            self._feed()
        elif target.kind == "timeout" and style is HeartbeatStyle.TIMEOUT_REWRITE:
            self._feed()
        self._publish_applied()
        return None

    async def _action(
        self,
        unit: int,
        fc: int,
        start: int,
        address: int,
        count: int,
        registers: list[int],
        values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """pymodbus calls this on every access, before it answers."""
        function = _FC_FUNCTION[fc]
        with self._lock:
            self._check_watchdog()
            beat = self.profile.failsafe.heartbeat
            if beat is not None and beat.style is HeartbeatStyle.TRAFFIC:
                self._feed()
            if fc in (3, 4) and count > self.profile.quirks.max_block:
                return ExcCodes.ILLEGAL_VALUE
            if values is not None:
                outcome = self._write((unit, function), fc, address, [int(v) for v in values])
                if outcome is not None:
                    return outcome
            self._refresh(unit, function, start, address, count, registers)
        return None

    def _refresh(
        self,
        unit: int,
        function: Function,
        start: int,
        address: int,
        count: int,
        registers: list[int],
    ) -> None:
        """Copy the memory into pymodbus's block before it answers."""
        memory = self._table(unit, function)
        if function.is_bit:
            first = address // 16
            for index in range(first, first + count):
                word = 0
                for bit in range(16):
                    word |= (memory.get(index * 16 + bit, 0) & 1) << bit
                registers[index - start] = word
            return
        for a in range(address, address + count):
            registers[a - start] = memory.get(a, 0)

    # -- pymodbus layout --------------------------------------------------------

    def _blocks(self, unit: int, function: Function) -> list[SimData]:
        addresses = sorted(self.memory.get((unit, function), {}))
        if not addresses:
            if function.is_bit:  # far away, so that every real address is invalid
                return [SimData(0xFFF0, values=[False] * 16, datatype=SimType.BITS)]
            return [SimData(0, count=1, datatype=SimType.INVALID)]
        if function.is_bit:
            first, last = addresses[0], addresses[-1]
            return [SimData(first, values=[False] * (last - first + 1), datatype=SimType.BITS)]
        gap = 1 if self.profile.quirks.no_gaps else _GAP_FILL + 1
        runs: list[list[int]] = [[addresses[0], addresses[0]]]
        for a in addresses[1:]:
            if a - runs[-1][1] <= gap:
                runs[-1][1] = a
            else:
                runs.append([a, a])
        return [
            SimData(first, values=[0] * (last - first + 1), datatype=SimType.REGISTERS)
            for first, last in runs
        ]

    def sim_devices(self) -> list[SimDevice]:
        """One pymodbus `SimDevice` per unit id, with the four tables apart."""
        units = sorted({unit for unit, _ in self.memory})
        order = (Function.COIL, Function.DISCRETE, Function.HOLDING, Function.INPUT)
        return [
            SimDevice(
                id=unit,
                simdata=(
                    self._blocks(unit, order[0]),
                    self._blocks(unit, order[1]),
                    self._blocks(unit, order[2]),
                    self._blocks(unit, order[3]),
                ),
                action=functools.partial(self._action, unit),
            )
            for unit in units
        ]

    def spec(self, path: str) -> RegisterSpec:
        """The resolved register at a profile path (`fields.soc`, `commands.current_limit`)."""
        return self.specs[path][1]
