"""The firmware-profile schema: one pydantic model per TOML table.

A profile describes one device model and firmware range declaratively: how to
reach and recognise it, which registers hold which quantity (from a fixed
vocabulary), how to command it, its own failsafe and its quirks. Every fact
cites the public sources it comes from (`[[sources]]` ids, `source` on the fact,
its table or the profile); one no source states is `status = "unverified"`, one
sources disagree on `"conflict"` with both cited.

Addresses are written as the vendor documents them; `doc_base` says whether
that numbering is 0- or 1-based, and `Profile.wire_address` is the one place
that turns them into 0-based PDU addresses.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from hubgate.profiles.citations import Fact, Source, Strict

Address = Annotated[int, Field(ge=0, le=65_535, description="Register or bit address")]
UnitId = Annotated[int, Field(ge=0, le=255)]


class Function(StrEnum):
    """The Modbus table a value lives in."""

    COIL = "coil"
    DISCRETE = "discrete"
    HOLDING = "holding"
    INPUT = "input"

    @property
    def is_bit(self) -> bool:
        """Coils and discrete inputs hold bits, not registers."""
        return self in (Function.COIL, Function.DISCRETE)


class DataType(StrEnum):
    """How the registers of a value are encoded."""

    U16 = "u16"
    I16 = "i16"
    U32 = "u32"
    I32 = "i32"
    U64 = "u64"
    I64 = "i64"
    F32 = "f32"
    F64 = "f64"
    STRING = "string"
    BITFIELD = "bitfield"

    @property
    def registers(self) -> int | None:
        """Registers one value takes; None when `count` says (string, bitfield)."""
        return _WIDTHS.get(self)


_WIDTHS = {
    DataType.U16: 1,
    DataType.I16: 1,
    DataType.U32: 2,
    DataType.I32: 2,
    DataType.U64: 4,
    DataType.I64: 4,
    DataType.F32: 2,
    DataType.F64: 4,
}


class WordOrder(StrEnum):
    """Byte order of a multi-register value: A is the most significant byte."""

    ABCD = "ABCD"
    """High word first, big-endian bytes: the Modbus default."""
    CDAB = "CDAB"
    """Low word first ("word-swapped", LSW-first)."""
    BADC = "BADC"
    """High word first, bytes swapped inside each register."""
    DCBA = "DCBA"
    """Fully little-endian."""


class Unit(StrEnum):
    """Physical unit of a value after scaling; each quantity has one canonical unit."""

    AMPERE = "A"
    VOLT = "V"
    WATT = "W"
    WATT_HOUR = "Wh"
    PERCENT = "%"
    HERTZ = "Hz"
    SECOND = "s"
    NONE = "none"


class Quantity(StrEnum):
    """The fixed vocabulary of what a field measures or reports.

    Signs: power_total and energy_import are seen from the site (positive =
    drawn from the grid); battery_power is positive when discharging. A device
    with the other convention gets a negative scale.
    """

    CURRENT_L1 = "current_l1"
    CURRENT_L2 = "current_l2"
    CURRENT_L3 = "current_l3"
    VOLTAGE_L1 = "voltage_l1"
    VOLTAGE_L2 = "voltage_l2"
    VOLTAGE_L3 = "voltage_l3"
    POWER_L1 = "power_l1"
    POWER_L2 = "power_l2"
    POWER_L3 = "power_l3"
    POWER_TOTAL = "power_total"
    ENERGY_IMPORT = "energy_import"
    ENERGY_EXPORT = "energy_export"
    SESSION_ENERGY = "session_energy"
    FREQUENCY = "frequency"
    CHARGER_STATE = "charger_state"
    PLUGGED = "plugged"
    CHARGING = "charging"
    ERROR_CODE = "error_code"
    HARDWARE_MAX_CURRENT = "hardware_max_current"
    HARDWARE_MIN_CURRENT = "hardware_min_current"
    APPLIED_CURRENT_LIMIT = "applied_current_limit"
    SAFE_CURRENT = "safe_current"
    LIMIT_VALIDITY = "limit_validity"
    PHASES_ACTIVE = "phases_active"
    SOC = "soc"
    BATTERY_POWER = "battery_power"
    BATTERY_MAX_CHARGE_POWER = "battery_max_charge_power"
    BATTERY_MAX_DISCHARGE_POWER = "battery_max_discharge_power"
    BATTERY_STATE = "battery_state"
    PV_POWER = "pv_power"
    INVERTER_STATE = "inverter_state"
    INVERTER_MAX_POWER = "inverter_max_power"
    GRID_LIMIT_PERCENT = "grid_limit_percent"
    GRID_LIMIT_POWER = "grid_limit_power"
    GRID_LIMIT_HEARTBEAT = "grid_limit_heartbeat"
    RELAY_DIM_14A = "relay_dim_14a"
    RELAY_FEED_IN_0 = "relay_feed_in_0"
    RELAY_FEED_IN_30 = "relay_feed_in_30"
    RELAY_FEED_IN_60 = "relay_feed_in_60"

    @property
    def unit(self) -> Unit:
        """The canonical unit every profile gives this quantity in."""
        return _UNITS.get(self.value) or _UNITS.get(self.value.split("_")[0]) or Unit.NONE


_UNITS: dict[str, Unit] = {
    "current": Unit.AMPERE,
    "voltage": Unit.VOLT,
    "power": Unit.WATT,
    "energy": Unit.WATT_HOUR,
    "session_energy": Unit.WATT_HOUR,
    "frequency": Unit.HERTZ,
    "hardware_max_current": Unit.AMPERE,
    "hardware_min_current": Unit.AMPERE,
    "applied_current_limit": Unit.AMPERE,
    "safe_current": Unit.AMPERE,
    "limit_validity": Unit.SECOND,
    "soc": Unit.PERCENT,
    "battery_power": Unit.WATT,
    "battery_max_charge_power": Unit.WATT,
    "battery_max_discharge_power": Unit.WATT,
    "pv_power": Unit.WATT,
    "inverter_max_power": Unit.WATT,
    "grid_limit_percent": Unit.PERCENT,
    "grid_limit_power": Unit.WATT,
}


class IecState(StrEnum):
    """IEC 61851 control-pilot states."""

    A = "A"
    """No vehicle."""
    B = "B"
    """Vehicle connected, not charging."""
    C = "C"
    """Charging."""
    D = "D"
    """Charging with ventilation."""
    E = "E"
    """No power (short circuit, EVSE off)."""
    F = "F"
    """Fault."""


class Encoding(Fact):
    """How a value's registers decode into a physical value.

    physical = (raw >> shift & mask) * scale * 10^SF + offset, where SF is the
    SunSpec scale-factor register at `scale_factor` (same block) if given.
    """

    function: Function = Function.HOLDING
    type: DataType = DataType.U16
    count: int | None = Field(
        default=None, ge=1, le=125, description="Registers (string, bitfield); else from type"
    )
    order: WordOrder = WordOrder.ABCD
    scale: float = Field(default=1.0, description="Multiplier from raw to the unit")
    offset: float = Field(default=0.0, description="Added after scaling")
    unit: Unit = Unit.NONE
    mask: int | None = Field(default=None, ge=1, description="Bit mask after the shift")
    shift: int = Field(default=0, ge=0, le=63, description="Right shift of the raw value")
    sentinel: tuple[int, ...] = Field(default=(), description="Raw values meaning 'not available'")
    scale_factor: Address | None = Field(
        default=None, description="SunSpec: address of the i16 power-of-ten exponent register"
    )
    block: str | None = Field(
        default=None, description="SunSpec: the model block the address is an offset into"
    )
    invert: bool = Field(default=False, description="Bits: active when the input reads 0")
    charset: Literal["utf-8", "utf-16-be"] = Field(
        default="utf-8", description="Strings: 'utf-16-be' is one character per register"
    )

    @property
    def registers(self) -> int:
        """How many registers (or bits) the value spans."""
        if self.function.is_bit:
            return 1
        return self.type.registers or self.count or 1

    @model_validator(mode="after")
    def _consistent(self) -> Encoding:
        width = self.type.registers
        if self.function.is_bit and self.type is not DataType.BITFIELD:
            raise ValueError(
                f"a {self.function} holds one bit: set type = 'bitfield' (got '{self.type}')"
            )
        if width is not None and self.count not in (None, width):
            raise ValueError(
                f"type {self.type} spans {width} register(s); drop count or set count = {width}"
            )
        if self.type is DataType.STRING and self.count is None:
            raise ValueError("a string needs count = number of registers")
        if self.scale == 0:
            raise ValueError("scale 0 would lose every value; use 1 for none")
        return self


class Register(Encoding):
    """A value at an address."""

    address: Address = Field(description="Address as documented (see the profile's doc_base)")


class FieldSpec(Register):
    """One field of the vocabulary: a value read from the device."""

    readable: bool = Field(default=True, description="False for write-only registers")


class Identify(Register):
    """A register read to recognise the device and its firmware."""

    what: Literal["vendor", "model", "firmware", "serial", "layout", "marker"]
    match: str | None = Field(default=None, description="Regular expression the text must match")
    unit_id: UnitId | None = Field(default=None, description="Unit id when not the device's own")
    example: str | int | float = Field(
        description="A value a real device returns (the simulator serves it)"
    )

    @field_validator("match")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"match is not a valid regular expression: {exc}") from exc
        return pattern


class Serial(Strict):
    """RS-485 line defaults of the device."""

    baud: int = Field(default=9600, ge=300, le=921_600)
    parity: Literal["N", "E", "O"] = "N"
    stop_bits: Literal[1, 2] = 1


class Transport(Fact):
    """How the device is reached by default."""

    link: Literal["tcp", "rtu", "tcp+rtu"] = "tcp"
    tcp_port: int = Field(default=502, ge=1, le=65_535)
    unit: UnitId = 1
    serial: Serial | None = Field(
        default=None, description="Factory line settings, where the documentation gives them"
    )
    inter_request_delay_ms: int = Field(
        default=0,
        ge=0,
        le=10_000,
        description="Quiet time the device needs on its link before each request to it",
    )
    max_in_flight: int = Field(
        default=1,
        ge=1,
        le=16,
        description="Requests the device answers at once over Modbus TCP (pipelining); 1"
        " unless it is known to answer several requests sent in one TCP segment",
    )

    @property
    def delay_s(self) -> float:
        """`inter_request_delay_ms` in seconds (`ModbusDevice.delay_s`)."""
        return self.inter_request_delay_ms / 1000

    @model_validator(mode="after")
    def _serial_for_rtu(self) -> Transport:
        if self.serial is not None and "rtu" not in self.link:
            raise ValueError(f"link '{self.link}' has no serial line: drop [transport.serial]")
        if self.max_in_flight > 1 and (self.link != "tcp" or self.inter_request_delay_ms):
            raise ValueError(
                "max_in_flight above 1 pipelines requests over Modbus TCP: it needs"
                " link = 'tcp' and no inter_request_delay_ms"
            )
        return self


class Pause(StrEnum):
    """How the device is paused."""

    ZERO = "zero"
    """Writing 0 to the setpoint pauses."""
    ENABLE = "enable"
    """A separate enable command pauses; 0 on the setpoint does not."""
    NONE = "none"
    """It cannot be paused over Modbus: below its minimum it stays at the minimum (and draws)."""


class ZeroMeans(StrEnum):
    """What a setpoint of 0 does."""

    PAUSE = "pause"
    NO_LIMIT = "no-limit"
    INVALID = "invalid"


class BelowMin(StrEnum):
    """What a setpoint above 0 but below the minimum does."""

    REJECT = "reject"
    """The device answers exception 03 (illegal data value)."""
    PAUSE = "pause"
    """Accepted; the session pauses until the setpoint reaches the minimum."""


class Setpoint(Register):
    """A limit written to the device (current in A or power in W)."""

    min: float = Field(ge=0, description="Smallest value that charges, in `unit`")
    max: float = Field(gt=0, description="Largest accepted value, in `unit`")
    step: float | None = Field(default=None, gt=0, description="Resolution; None = any value")
    per_phase: bool = False
    phase_stride: int | None = Field(
        default=None, ge=1, description="Per phase: registers from L1 to L2 to L3"
    )
    write: Literal["single", "multiple"] = Field(
        default="single", description="FC6 (or FC5) for one word, or FC16 only"
    )
    readable: bool = True
    zero_means: ZeroMeans = ZeroMeans.PAUSE
    below_min: BelowMin = BelowMin.REJECT
    percent_of: Quantity | None = Field(
        default=None,
        description="unit '%': the value is a percentage of this field's (SunSpec InWRte of WChaMax)",
    )

    @model_validator(mode="after")
    def _range(self) -> Setpoint:
        if self.percent_of is not None and self.unit is not Unit.PERCENT:
            raise ValueError(f"a setpoint in percent of {self.percent_of} needs unit = '%'")
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        if self.per_phase and self.phase_stride is None:
            raise ValueError("a per-phase setpoint needs phase_stride")
        if self.registers > 1 and self.write == "single":
            raise ValueError(
                f"a {self.registers}-register value is written with FC16: set write = 'multiple'"
            )
        return self


class Switch(Fact):
    """A register or coil written with fixed values (enable, phase switching)."""

    address: Address
    function: Function = Function.HOLDING
    block: str | None = Field(
        default=None, description="SunSpec: the model block the address is an offset into"
    )
    write: Literal["single", "multiple"] = "single"
    values: dict[str, int] = Field(min_length=2, description="Name → raw value written")


class Commands(Fact):
    """What hubgate can tell the device to do."""

    current_limit: Setpoint | None = None
    power_limit: Setpoint | None = None
    charge_power_limit: Setpoint | None = None
    discharge_power_limit: Setpoint | None = None
    pause: Pause = Pause.ZERO
    enable: Switch | None = Field(default=None, description="values 'on' and 'off'")
    phase_switch: Switch | None = Field(default=None, description="values '1p' and '3p'")

    @model_validator(mode="after")
    def _pause_path(self) -> Commands:
        if self.pause is Pause.ENABLE and self.enable is None:
            raise ValueError("pause = 'enable' needs a [commands.enable] switch")
        if self.enable is not None and not {"on", "off"} <= set(self.enable.values):
            raise ValueError("commands.enable.values needs 'on' and 'off'")
        if self.phase_switch is not None and not {"1p", "3p"} <= set(self.phase_switch.values):
            raise ValueError("commands.phase_switch.values needs '1p' and '3p'")
        limit = self.current_limit or self.power_limit
        if (
            limit is not None
            and self.pause is Pause.ZERO
            and limit.zero_means is not ZeroMeans.PAUSE
        ):
            raise ValueError(
                f"0 means '{limit.zero_means}' on this setpoint, so pause = 'zero' cannot "
                "work: set pause = 'enable' with a [commands.enable] switch"
            )
        return self

    @property
    def setpoints(self) -> dict[str, Setpoint]:
        """Every setpoint the profile declares, by name."""
        names = ("current_limit", "power_limit", "charge_power_limit", "discharge_power_limit")
        return {n: s for n in names if (s := getattr(self, n)) is not None}


class HeartbeatStyle(StrEnum):
    """What keeps the device's watchdog from expiring."""

    TOKEN = "token"
    """Write a fixed value to a register."""
    TOGGLE = "toggle"
    """Write alternating values (0, 1, 0, ...)."""
    COUNTER = "counter"
    """Write an incrementing counter."""
    SETPOINT_REWRITE = "setpoint-rewrite"
    """Write the setpoint again."""
    TIMEOUT_REWRITE = "timeout-rewrite"
    """Write the timeout register again."""
    TRAFFIC = "traffic"
    """Any valid Modbus request."""


class Heartbeat(Fact):
    """How and how often hubgate feeds the watchdog."""

    style: HeartbeatStyle
    address: Address | None = Field(default=None, description="token / toggle / counter register")
    function: Function = Function.HOLDING
    value: int | None = Field(default=None, description="token: the value written")
    period_s: float = Field(gt=0, le=3600, description="Write at least this often")

    @model_validator(mode="after")
    def _needs(self) -> Heartbeat:
        own_register = self.style in (
            HeartbeatStyle.TOKEN,
            HeartbeatStyle.TOGGLE,
            HeartbeatStyle.COUNTER,
        )
        if own_register and self.address is None:
            raise ValueError(f"heartbeat style '{self.style}' needs its address")
        if self.style is HeartbeatStyle.TOKEN and self.value is None:
            raise ValueError("heartbeat style 'token' needs the value written")
        return self


class Timeout(Encoding):
    """The device's communication timeout."""

    address: Address | None = Field(default=None, description="None when not in a register")
    default_s: float | None = Field(
        default=None,
        ge=0,
        description="Timeout in force unless hubgate sets one (0: none, e.g. SunSpec RvrtTms); "
        "omit when the documentation does not say: hubgate writes or reads it",
    )
    writable: bool = Field(default=True, description="False: fixed or read-only")
    unit: Unit = Unit.SECOND
    read_at: Register | None = Field(
        default=None, description="Where it reads back when `address` is write-only (KEBA 1602)"
    )
    enable_address: Address | None = Field(
        default=None, description="Register switching the timeout on (Delta 201), written first"
    )
    enable_value: int = Field(default=1, description="What `enable_address` takes to switch it on")
    enable_type: Literal[DataType.U16, DataType.U32] = Field(
        default=DataType.U16, description="u32: a two-register enum (SMA 41193), written whole"
    )

    @model_validator(mode="after")
    def _known_unless_read(self) -> Timeout:
        if self.default_s is None and self.address is None and self.writable:
            raise ValueError(
                "a timeout held in no register needs default_s, or writable = false where "
                "it is set on the device alone"
            )
        return self


class Fallback(Encoding):
    """The limit the device falls back to when its watchdog expires."""

    address: Address | None = Field(default=None, description="None when fixed")
    default: float | None = Field(
        default=None,
        ge=0,
        description="Value in force unless hubgate sets one, in `unit`; omit when the "
        "documentation does not say: hubgate writes or reads it",
    )
    writable: bool = True
    read_at: Register | None = Field(
        default=None, description="Where it reads back when `address` is write-only (KEBA 1600)"
    )
    pause_value: float | None = Field(
        default=None,
        ge=0,
        description="The value (in `unit`) that stops charging on fallback (Heidelberg 0, "
        "KEBA 0, Mennekes 1); omit when the documentation does not say: hubgate then never "
        "gives the device a failsafe below the site's failsafe_current_a",
    )
    set_with: str | None = Field(default=None, description="The tool that sets it if not hubgate")

    @model_validator(mode="after")
    def _known_unless_read(self) -> Fallback:
        if self.default is None and self.address is None and self.writable:
            raise ValueError(
                "a fallback held in no register needs default, or writable = false where "
                "it is set on the device alone"
            )
        if self.pause_value is not None and (self.address is None or not self.writable):
            raise ValueError("pause_value is written: it needs a writable fallback register")
        return self


class Failsafe(Fact):
    """The device's own failsafe, or why it has none."""

    present: bool
    reason: str | None = Field(default=None, description="Why absent; required when absent")
    timeout: Timeout | None = None
    fallback: Fallback | None = None
    heartbeat: Heartbeat | None = Field(
        default=None,
        description="Feeds the watchdog; without a failsafe, a keep-alive the device needs "
        "to take setpoints at all (Schneider EVlink life bit)",
    )

    def fixed_current_a(self, failsafe_current_a: float) -> float | None:
        """What the charger falls back to whatever failsafe current hubgate shares out
        (`ConnectorPaths.share_failsafe`): None where it takes any, 0 A (its `pause_value`)
        included; a fallback fixed on the device at its documented current; else, where it
        has none or cannot be paused on fallback, the site's `failsafe_current_a`."""
        fallback = self.fallback
        if not self.present or fallback is None:
            return failsafe_current_a  # none: it keeps its last setpoint (a config warning)
        if fallback.pause_value is not None:
            return None
        fixed = fallback.address is None or not fallback.writable
        if fixed and fallback.default is not None and fallback.unit is Unit.AMPERE:
            return fallback.default
        return failsafe_current_a

    @model_validator(mode="after")
    def _present_or_reason(self) -> Failsafe:
        if self.present:
            missing = [
                name for name in ("timeout", "fallback", "heartbeat") if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(
                    f"a present failsafe needs [failsafe.{missing[0]}] "
                    "(or set present = false with a reason)"
                )
        else:
            if not self.reason:
                raise ValueError("an absent failsafe needs reason = '...' saying why")
            if self.timeout or self.fallback:
                raise ValueError(
                    "an absent failsafe has no timeout or fallback (a keep-alive heartbeat "
                    "the device needs to accept setpoints may stay)"
                )
        return self


class States(Fact):
    """How the device's state field maps to IEC 61851 states."""

    field: Quantity = Quantity.CHARGER_STATE
    map: dict[str, IecState] = Field(min_length=1, description="Raw value (as text) → state")
    default: IecState | None = Field(default=None, description="For values not in the map")


class Quirks(Fact):
    """What the device does differently from a plain Modbus server."""

    max_block: int = Field(default=125, ge=1, le=125, description="Registers per read")
    no_gaps: bool = Field(default=False, description="Reads spanning undefined registers fail")
    multi_register_write_only: bool = Field(default=False, description="FC16 only, never FC6")
    closes_connection: tuple[tuple[Address, Address], ...] = Field(
        default=(), description="[first, last] ranges whose reads drop the connection"
    )
    forbidden: tuple[tuple[Address, Address], ...] = Field(
        default=(), description="[first, last] ranges never to read or write"
    )


class SunSpecBlock(Strict):
    """A SunSpec model block: one of `ids` with `length` data registers."""

    ids: tuple[int, ...] = Field(min_length=1, description="Acceptable model ids; first simulated")
    length: int = Field(ge=0, le=1000, description="Data registers after the id and length")


class SunSpec(Fact):
    """Model discovery: the "SunS" marker at `base`, then the model chain."""

    base: Address = 40000
    blocks: dict[str, SunSpecBlock] = Field(min_length=1, description="In chain order")


class Firmware(Fact):
    """The firmware range the profile holds for: min inclusive, below exclusive."""

    min: str | None = None
    below: str | None = None


class DeviceKind(StrEnum):
    """What the device is to the site."""

    CHARGER = "charger"
    METER = "meter"
    INVERTER = "inverter"
    BATTERY = "battery"
    GRID_OPERATOR = "grid-operator"


class GridOperatorRule(Strict):
    """What the grid operator's signals mean for the site."""

    feed_in_percent: dict[Quantity, float] = Field(
        default_factory=dict, description="Relay field → feed-in cap in % while active"
    )
    heartbeat_timeout_s: float | None = Field(
        default=None,
        gt=0,
        le=86_400,
        description="The box's limit is stale when grid_limit_heartbeat has not changed for "
        "this long (a hung box still answering with its last limit); needs that field",
    )


class Profile(Fact):
    """One firmware profile file."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]*$", description="Equals the file name")
    vendor: str = Field(min_length=1)
    model: str = Field(min_length=1)
    also_sold_as: tuple[str, ...] = ()
    kind: DeviceKind
    firmware: Firmware = Firmware()
    doc_base: Literal[0, 1] = Field(default=0, description="1: documented addresses start at 1")
    transport: Transport = Transport()
    identification: tuple[Identify, ...] = Field(min_length=1)
    sunspec: SunSpec | None = None
    fields: dict[Quantity, FieldSpec] = Field(min_length=1)
    commands: Commands = Commands()
    failsafe: Failsafe
    states: States | None = None
    quirks: Quirks = Quirks()
    grid_operator: GridOperatorRule | None = None
    sources: tuple[Source, ...] = Field(
        min_length=1, description="The public sources the facts cite, by id"
    )

    def wire_address(self, documented: int) -> int:
        """The 0-based PDU address of a documented address: the one place this happens."""
        return documented - self.doc_base
