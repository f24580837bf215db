"""The site configuration: one pydantic model per TOML table.

A site is a grid connection with a tree of nodes (transformers, feeders,
switchboards) below it; chargers hang from nodes, meters measure nodes. Every
model forbids unknown keys so that a typo is an error, never a silent default.
Cross-references (parents, the node a charger hangs from) are checked by
`hubgate.config.references`, which works on the raw file so that they are
reported together with field errors. The field types and the strict base are in
`config.base`, the service tables (listeners, CSMS, MQTT, authorization) in
`config.services`, the sessions' default needs and `[deadlines]` in `config.deadlines`.
"""

from __future__ import annotations

import math
from datetime import date, time
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, WithJsonSchema, model_validator

from hubgate.config.base import (
    Amps,
    Identifier,
    Kilowatts,
    PhaseCurrents,
    PositiveAmps,
    Seconds,
    Strict,
    TcpPort,
)
from hubgate.config.deadlines import Deadlines, SessionDefault, TokenSessionDefault
from hubgate.config.services import (
    Api,
    Authorization,
    Cluster,
    Csms,
    ModbusServer,
    Mqtt,
    OcppServer,
    Records,
)
from hubgate.ocpp.versions import OcppVersion

GRID_NODE_ID = "grid"
"""The id of the grid connection, the root of the node tree."""


class Limits(Strict):
    """Limits shared by the grid connection and every node; each is optional."""

    power_limit_kw: Kilowatts | None = Field(default=None, description="Total active power limit")
    unbalance_limit_a: PositiveAmps | None = Field(
        default=None, description="Largest allowed difference between phase currents"
    )


class Site(Strict):
    """Who and where."""

    name: str = Field(min_length=1, max_length=200)
    timezone: str = "UTC"


class Grid(Limits):
    """The grid connection: the root of the tree."""

    voltage_v: float = Field(default=230.0, gt=50, le=1000, description="Phase-to-neutral voltage")
    phase_current_limit_a: PhaseCurrents = Field(
        description="Per-phase current limit of the connection: one value or [L1, L2, L3]"
    )
    safety_margin_a: Amps = Field(
        default=0.0,
        description="Kept free below every phase limit of the grid connection, and as power "
        "(3 x voltage x margin) below its power limit and the grid operator's",
    )
    peak_target_kw: Kilowatts | None = Field(
        default=None,
        description="Contract or peak-shaving target on grid import: the battery discharges "
        "to hold it, EV charging is kept under it",
    )
    export_limit_kw: float | None = Field(
        default=None,
        ge=0,
        le=1_000_000,
        description="Most the site may feed into the grid: PV is curtailed to hold it "
        "(0: zero export); unset: PV feed-in is not limited. A battery never discharges "
        "into the grid either way",
    )

    @property
    def usable_phase_a(self) -> tuple[float, float, float]:
        """The phase limits less the safety margin: what hubgate may command at most."""
        a, b, c = (max(limit - self.safety_margin_a, 0.0) for limit in self.phase_current_limit_a)
        return (a, b, c)

    @property
    def usable_power_w(self) -> float:
        """The power limit less the safety margin over three phases (inf: no power limit)."""
        if self.power_limit_kw is None:
            return math.inf
        return max(self.power_limit_kw * 1000 - 3 * self.voltage_v * self.safety_margin_a, 0.0)

    @model_validator(mode="after")
    def _target_within_limit(self) -> Grid:
        limit = self.power_limit_kw
        if self.peak_target_kw is not None and limit is not None and self.peak_target_kw > limit:
            raise ValueError(
                f"peak_target_kw ({self.peak_target_kw:g}) is above power_limit_kw ({limit:g}); "
                "the target must be at or below the connection's limit"
            )
        return self


class NodeKind(StrEnum):
    """What a node of the tree is."""

    TRANSFORMER = "transformer"
    FEEDER = "feeder"
    SWITCHBOARD = "switchboard"


class Node(Limits):
    """A transformer, feeder or switchboard below the grid connection."""

    id: Identifier
    kind: NodeKind
    parent: Identifier = Field(
        default=GRID_NODE_ID, description="Id of the parent node, or 'grid' for the connection"
    )
    phase_current_limit_a: PhaseCurrents | None = Field(
        default=None, description="Per-phase current limit: one value or [L1, L2, L3]"
    )


class Parity(StrEnum):
    """Serial parity."""

    NONE = "N"
    EVEN = "E"
    ODD = "O"


class SerialLine(Strict):
    """An RS-485 line for Modbus RTU."""

    device: str = Field(min_length=1, description="Serial device, e.g. /dev/ttyUSB0")
    baud: int = Field(default=9600, ge=300, le=921_600)
    parity: Parity = Parity.EVEN
    stop_bits: Literal[1, 2] = 1


class ModbusEndpoint(Strict):
    """How to reach a Modbus device: TCP (host), RTU (serial) or RTU over TCP. A site file
    that leaves out `unit`, `port` or the serial line's settings gets its profile's
    `[transport]` ones (`config.profile_refs.with_transport_defaults`)."""

    profile: str = Field(min_length=1, description="Firmware profile name")
    host: str | None = Field(default=None, description="Host for Modbus TCP or RTU over TCP")
    port: TcpPort = Field(default=502, description="Default: the profile's tcp_port")
    serial: SerialLine | None = None
    rtu_over_tcp: bool = False
    unit: int = Field(default=1, ge=0, le=255, description="Default: the profile's unit")

    @model_validator(mode="after")
    def _one_transport(self) -> ModbusEndpoint:
        if (self.host is None) == (self.serial is None):
            raise ValueError("give exactly one of 'host' (TCP) or 'serial' (RTU)")
        if self.rtu_over_tcp and self.host is None:
            raise ValueError("'rtu_over_tcp' needs 'host'")
        return self


class CapabilityOverride(Strict):
    """What a charger says of itself, corrected: each field given wins over what it reports
    (`docs/ocpp.md`, "Capabilities")."""

    rate_unit: Literal["A", "W"] | None = Field(
        default=None, description="The unit its charging profiles must use"
    )
    max_stack_level: int | None = Field(
        default=None, ge=0, le=1000, description="Highest stack level it honours (0: one level)"
    )
    max_profiles: int | None = Field(default=None, ge=1, le=1000)
    max_periods: int | None = Field(default=None, ge=1, le=1024)
    phase_switch: bool | None = Field(
        default=None, description="Switches from 3 to 1 phase during a session"
    )
    clock_offset_s: float | None = Field(
        default=None, ge=-86_400, le=86_400, description="Its clock minus the true time (s)"
    )


class OcppEndpoint(Strict):
    """A charge point that connects to hubgate over OCPP."""

    identity: str = Field(min_length=1, max_length=48, pattern=r"^[^/\s]+$")
    versions: tuple[OcppVersion, ...] = Field(
        default=(OcppVersion.V201, OcppVersion.V16), min_length=1
    )
    password: str | None = Field(
        default=None, min_length=16, max_length=40, description="Security profile 1 and 2"
    )
    capabilities: CapabilityOverride | None = Field(
        default=None, description="Corrections to what the charger reports of itself"
    )


class PhaseMode(StrEnum):
    """How a connector draws."""

    ONE_PHASE = "1p"
    THREE_PHASE = "3p"
    SWITCHABLE = "switchable"


class PhaseRotation(StrEnum):
    """Which grid phases the charger's L1, L2, L3 terminals are wired to."""

    L1L2L3 = "L1L2L3"
    L2L3L1 = "L2L3L1"
    L3L1L2 = "L3L1L2"
    L1L3L2 = "L1L3L2"
    L2L1L3 = "L2L1L3"
    L3L2L1 = "L3L2L1"

    def grid_phases(self) -> tuple[int, int, int]:
        """Grid phase index (0-2) of the charger's L1, L2 and L3."""
        return (int(self.value[1]) - 1, int(self.value[3]) - 1, int(self.value[5]) - 1)


PRIORITY_MAX = 9
"""Highest priority tier of a connector (tiers 0 to 9; higher tiers are served first)."""


class DcConnector(Strict):
    """A DC outlet: its power on the DC side and what that draws from the AC tree.

    The connector's AC currents are derived from it (`SiteConfig` fills in
    `max_current_a` and `min_current_a` from the grid's voltage): I = P_dc /
    (efficiency * power factor * 3 * V) on each of three phases."""

    max_power_kw: Kilowatts = Field(description="Most it delivers to the EV")
    min_power_kw: float = Field(
        default=0.0,
        ge=0,
        le=1_000_000,
        description="Least it delivers while a session runs (below it the connector pauses)",
    )
    efficiency: float = Field(default=0.95, gt=0, le=1, description="DC power / AC power")
    power_factor: float = Field(default=0.99, gt=0, le=1)
    idle_kw: float = Field(
        default=0.0, ge=0, le=1_000, description="Drawn from the AC side always (pre-heat, idle)"
    )
    ramp_kw_per_s: float | None = Field(
        default=None, gt=0, le=10_000, description="How fast its power follows a new limit"
    )
    hold_minimum: bool = Field(
        default=False,
        description="Offer it its minimum while idle: a charger given 0 W shows itself "
        "unavailable (NoFreePower) and starts no session",
    )

    @model_validator(mode="after")
    def _min_below_max(self) -> DcConnector:
        if self.min_power_kw > self.max_power_kw:
            raise ValueError(
                f"min_power_kw ({self.min_power_kw:g}) is above max_power_kw "
                f"({self.max_power_kw:g})"
            )
        return self

    def ac_current_a(self, dc_w: float, voltage_v: float) -> float:
        """The AC current per phase that delivers `dc_w` on the DC side."""
        return dc_w / (self.efficiency * self.power_factor * 3 * voltage_v)

    def dc_w(self, current_a: float, voltage_v: float) -> float:
        """The DC power `current_a` per AC phase delivers."""
        return current_a * self.efficiency * self.power_factor * 3 * voltage_v

    def idle_current_a(self, voltage_v: float) -> float:
        """Its idle draw as AC current per phase."""
        return self.idle_kw * 1000 / (self.power_factor * 3 * voltage_v)


MIN_DC_CURRENT_A = 0.1
"""The minimum current of a DC connector without a minimum power."""


class Connector(Strict):
    """One outlet of a charger."""

    id: int = Field(ge=1, le=255)
    phases: PhaseMode = PhaseMode.THREE_PHASE
    min_current_a: PositiveAmps = Field(default=6.0, description="Below this the connector pauses")
    max_current_a: PositiveAmps = Field(description="Hardware or cable maximum per phase")
    priority: int = Field(
        default=0, ge=0, le=PRIORITY_MAX, description="Higher tiers are served first"
    )
    weight: float = Field(default=1.0, gt=0, le=100, description="Share within a priority tier")
    pv_mode: bool = Field(
        default=False, description="Charge from PV surplus (and battery discharge) only"
    )
    paragraph_14a: bool = Field(
        default=False,
        description="German §14a EnWG: this connector is a controllable consumption device "
        "of its own (set it on the charger instead when the charger is registered as one)",
    )
    dc: DcConnector | None = Field(
        default=None, description="A DC connector: its currents come from these powers"
    )

    @model_validator(mode="after")
    def _min_below_max(self) -> Connector:
        if self.dc is not None and self.phases is not PhaseMode.THREE_PHASE:
            raise ValueError("a DC connector draws on three phases: phases = '3p'")
        if self.min_current_a > self.max_current_a:
            raise ValueError(
                f"min_current_a ({self.min_current_a}) is above max_current_a "
                f"({self.max_current_a}); lower the minimum or raise the maximum"
            )
        return self


class Demand(Strict):
    """Demand charges: keep each metering interval's average import under the month's target."""

    interval_min: Literal[5, 10, 15, 30, 60] = Field(
        default=15, description="The grid operator's metering interval, aligned to the clock"
    )
    target_kw: Kilowatts | None = Field(
        default=None,
        description="Average import per interval to stay under; none: the month's peak so far",
    )
    state_path: str = Field(
        default="hubgate-demand.json",
        description="Where the month's peak and the current interval are kept across restarts",
    )


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _weekdays(value: object) -> object:
    """Day names (`mon`..`sun`) and ranges (`mon-fri`, `sat-sun`) as weekday numbers (Mon 0)."""
    if not isinstance(value, list | tuple):
        return value
    days: list[int] = []
    for item in value:
        if not isinstance(item, str):
            raise ValueError(f"days are names like 'mon' or ranges like 'mon-fri', got {item!r}")
        first, _, last = item.strip().lower().partition("-")
        if first not in WEEKDAYS or (last and last not in WEEKDAYS):
            raise ValueError(
                f"unknown day {item!r}: use {', '.join(WEEKDAYS)} or a range 'mon-fri'"
            )
        a, b = WEEKDAYS.index(first), WEEKDAYS.index(last or first)
        days.extend(range(a, b + 1) if a <= b else [*range(a, 7), *range(b + 1)])
    return tuple(sorted(set(days)))


Weekdays = Annotated[
    tuple[int, ...],
    BeforeValidator(_weekdays),
    WithJsonSchema(
        {
            "type": "array",
            "items": {"type": "string"},
            "description": "Day names (mon..sun) or ranges (mon-fri)",
        }
    ),
]


class TimeWindow(Strict):
    """A window of local time (the site's timezone) on some weekdays or dates."""

    days: Weekdays = Field(default=(0, 1, 2, 3, 4, 5, 6), description="Weekdays; default all")
    dates: tuple[date, ...] = Field(
        default=(), description="Only on these dates (YYYY-MM-DD), whatever the weekday"
    )
    start: time = Field(description="Local time the window starts, 'HH:MM'")
    end: time = Field(
        description="Local time it ends, 'HH:MM'; at or before start: the next day "
        "(start = end: 24 hours)"
    )


class TariffPeriod(Strict):
    """A named tariff period (e.g. the grid operator's high-tariff hours) schedules can use."""

    name: Identifier
    windows: tuple[TimeWindow, ...] = Field(min_length=1)


class LimitSchedule(Strict):
    """A limit on a node that holds during time windows or a named tariff period."""

    name: Identifier
    node: Identifier = Field(default=GRID_NODE_ID, description="The node limited, or 'grid'")
    power_limit_kw: float | None = Field(default=None, ge=0, le=1_000_000)
    phase_current_limit_a: PhaseCurrents | None = None
    tariff: Identifier | None = Field(default=None, description="A [[tariff_periods]] name")
    windows: tuple[TimeWindow, ...] = ()

    @model_validator(mode="after")
    def _when_and_what(self) -> LimitSchedule:
        if (self.tariff is None) == (not self.windows):
            raise ValueError("give exactly one of 'tariff' or 'windows' for a schedule")
        if self.power_limit_kw is None and self.phase_current_limit_a is None:
            raise ValueError("give power_limit_kw and/or phase_current_limit_a for a schedule")
        return self


class Charger(Strict):
    """A charger: OCPP or Modbus controlled, hanging from one node."""

    id: Identifier
    node: Identifier = Field(description="Id of the node the charger is fed from, or 'grid'")
    ocpp: OcppEndpoint | None = None
    modbus: ModbusEndpoint | None = None
    phase_rotation: PhaseRotation = PhaseRotation.L1L2L3
    connectors: tuple[Connector, ...] = Field(min_length=1)
    paragraph_14a: bool = Field(
        default=False,
        description="German §14a EnWG: the charger is one controllable consumption device, "
        "counted once whatever its number of connectors",
    )
    session_default: SessionDefault | None = Field(
        default=None,
        description="Energy need and departure of every session that states none of its own",
    )

    @model_validator(mode="after")
    def _one_protocol(self) -> Charger:
        if (self.ocpp is None) == (self.modbus is None):
            raise ValueError("give exactly one of 'ocpp' or 'modbus' for a charger")
        ids = [c.id for c in self.connectors]
        if len(set(ids)) != len(ids):
            raise ValueError(f"connector ids must be unique within a charger, got {ids}")
        if self.paragraph_14a and any(c.paragraph_14a for c in self.connectors):
            raise ValueError(
                "paragraph_14a is set on the charger and on connectors: set it on the charger "
                "(one device) or on each connector that is a device of its own, not both"
            )
        return self


class Meter(Strict):
    """A Modbus energy meter measuring one node (or 'grid')."""

    id: Identifier
    node: Identifier = Field(description="Id of the node whose feed the meter measures")
    modbus: ModbusEndpoint


class Battery(Strict):
    """A stationary battery behind the grid connection."""

    id: Identifier
    node: Identifier = GRID_NODE_ID
    modbus: ModbusEndpoint
    capacity_kwh: Kilowatts
    max_charge_kw: Kilowatts
    max_discharge_kw: Kilowatts
    min_soc_percent: float = Field(default=10.0, ge=0, le=100)
    max_soc_percent: float = Field(default=95.0, ge=0, le=100)
    charge_from_grid: bool = Field(
        default=True, description="Also recharge from spare grid headroom, not only PV surplus"
    )

    @model_validator(mode="after")
    def _soc_window(self) -> Battery:
        if self.min_soc_percent >= self.max_soc_percent:
            raise ValueError(
                f"min_soc_percent ({self.min_soc_percent:g}) must be below max_soc_percent "
                f"({self.max_soc_percent:g})"
            )
        return self


class Pv(Strict):
    """A PV inverter."""

    id: Identifier
    node: Identifier = GRID_NODE_ID
    modbus: ModbusEndpoint
    peak_kw: Kilowatts


class GridOperatorSource(StrEnum):
    """Where the grid operator's limit comes from."""

    MODBUS_SERVER = "modbus-server"
    MODBUS_DEVICE = "modbus-device"
    RELAY_CONTACTS = "relay-contacts"
    API = "api"


class Paragraph14aFloor(StrEnum):
    """How the §14a minimum of the controllable devices is figured (BK6-22-300, Anlage 1)."""

    EMS = "ems"
    """Ziff. 4.5.2: one energy-management system for all devices, with the simultaneity factor."""
    PER_DEVICE = "per-device"
    """Ziff. 4.5.1: every device keeps 4.2 kW (direct control, no EMS declared)."""


class GridOperator(Strict):
    """The grid operator's (DSO's) limit on the connection."""

    source: GridOperatorSource
    modbus: ModbusEndpoint | None = Field(
        default=None, description="The control box or digital-input module"
    )
    paragraph_14a_floor: Paragraph14aFloor = Field(
        default=Paragraph14aFloor.EMS,
        description="German §14a EnWG: the minimum the chargers and connectors marked "
        "paragraph_14a keep while dimmed: 'ems' (4.2 kW + (n - 1) x GZF x 4.2 kW) or "
        "'per-device' (4.2 kW each)",
    )
    hold_last_s: Seconds = Field(
        default=900.0,
        description="When the source falls silent, its last limit holds this long (the box "
        "may be restarting), then the fallback",
    )
    fallback_percent: float | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Limit in force after hold_last_s of silence, in % of the connection; "
        "unset: the last limit stays",
    )
    heartbeat_timeout_s: Seconds | None = Field(
        default=None,
        description="The box counts as silent when its heartbeat counter (grid_limit_heartbeat) "
        "has not changed for this long; unset: its profile's [grid_operator] heartbeat_timeout_s",
    )

    @model_validator(mode="after")
    def _device_when_needed(self) -> GridOperator:
        needs_device = self.source in (
            GridOperatorSource.MODBUS_DEVICE,
            GridOperatorSource.RELAY_CONTACTS,
        )
        if needs_device and self.modbus is None:
            raise ValueError(f"source '{self.source}' needs a 'modbus' device")
        return self


class Control(Strict):
    """The control loop, failsafe budgets and device-side leases."""

    cycle_s: float = Field(default=1.0, ge=0.1, le=60, description="Control cycle period")
    meter_stale_s: Seconds = Field(
        default=5.0, description="A meter older than this is lost (never within two cycles)"
    )
    degraded_budget_percent: float = Field(
        default=50.0,
        gt=0,
        le=100,
        description="Share of a node's limit usable while its meter is lost",
    )
    failsafe_current_a: PositiveAmps = Field(
        default=6.0, description="Current a charger falls back to by itself when hubgate is gone"
    )
    lease_s: Seconds = Field(
        default=60.0, description="Device-side lease: Modbus watchdog and OCPP profile validTo"
    )
    hold_rotate_s: Seconds = Field(
        default=60.0,
        description="While a limit binds, the one idle DC connector under it that keeps its "
        "minimum (hold_minimum) changes this often; the others yield to the EVs",
    )

    @property
    def meter_stale_after_s(self) -> float:
        """When a meter counts as lost: `meter_stale_s`, but never within two cycles (a meter
        is read once a cycle, and a read that misses its cycle counts in the next)."""
        return max(self.meter_stale_s, 2 * self.cycle_s)


def _dc_connector(connector: object, voltage_v: float) -> object:
    """A connector table with its currents derived from its `dc` powers (left to the
    model's checks when it is not well-formed)."""
    if not isinstance(connector, dict) or not isinstance(connector.get("dc"), dict):
        return connector
    given = [k for k in ("max_current_a", "min_current_a") if k in connector]
    if given:
        raise ValueError(
            f"connector {connector.get('id')} is DC: its currents come from its dc powers; "
            f"remove {' and '.join(given)}"
        )
    try:
        dc = DcConnector.model_validate(connector["dc"])
    except ValueError:
        return {**connector, "max_current_a": 1.0}  # the dc table's own errors are reported
    return {
        **connector,
        "max_current_a": round(dc.ac_current_a(dc.max_power_kw * 1000, voltage_v), 3),
        "min_current_a": max(
            MIN_DC_CURRENT_A, round(dc.ac_current_a(dc.min_power_kw * 1000, voltage_v), 3)
        ),
    }


class SiteConfig(Strict):
    """A whole site file."""

    @model_validator(mode="before")
    @classmethod
    def _dc_currents(cls, data: object) -> object:
        """Derive each DC connector's AC currents from its powers and the grid's voltage."""
        if not isinstance(data, dict) or not isinstance(data.get("chargers"), list | tuple):
            return data
        grid = data.get("grid")
        voltage = grid.get("voltage_v", 230.0) if isinstance(grid, dict) else 230.0
        if not isinstance(voltage, int | float) or isinstance(voltage, bool) or voltage <= 0:
            return data  # the grid's own check reports it
        chargers = []
        for charger in data["chargers"]:
            if isinstance(charger, dict) and isinstance(charger.get("connectors"), list | tuple):
                charger = {
                    **charger,
                    "connectors": [_dc_connector(c, voltage) for c in charger["connectors"]],
                }
            chargers.append(charger)
        return {**data, "chargers": chargers}

    site: Site
    grid: Grid
    nodes: tuple[Node, ...] = ()
    chargers: tuple[Charger, ...] = ()
    meters: tuple[Meter, ...] = ()
    battery: Battery | None = None
    pv: tuple[Pv, ...] = ()
    grid_operator: GridOperator | None = None
    control: Control = Control()
    ocpp: OcppServer = OcppServer()
    csms: Csms | None = None
    authorization: Authorization | None = None
    modbus_server: ModbusServer | None = None
    api: Api = Api()
    mqtt: Mqtt | None = None
    records: Records = Records()
    cluster: Cluster | None = None
    demand: Demand | None = None
    session_defaults: tuple[TokenSessionDefault, ...] = Field(
        default=(),
        description="Energy need and departure per id token (OCPP chargers); before the "
        "charger's session_default",
    )
    deadlines: Deadlines = Deadlines()
    tariff_periods: tuple[TariffPeriod, ...] = ()
    schedules: tuple[LimitSchedule, ...] = Field(
        default=(), description="Time-based limits per node (leases with source 'schedule')"
    )

    @model_validator(mode="after")
    def _schedules_named_once(self) -> SiteConfig:
        for what, names in (
            ("tariff_periods", [t.name for t in self.tariff_periods]),
            ("schedules", [s.name for s in self.schedules]),
        ):
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ValueError(f"{what}: names must be unique, {', '.join(twice)} given twice")
        tariffs = {t.name for t in self.tariff_periods}
        for schedule in self.schedules:
            if schedule.tariff is not None and schedule.tariff not in tariffs:
                known = ", ".join(sorted(tariffs)) or "none defined"
                raise ValueError(
                    f"schedule {schedule.name!r}: tariff {schedule.tariff!r} is not a "
                    f"[[tariff_periods]] name ({known}); add it or fix the name"
                )
        return self

    @model_validator(mode="after")
    def _paragraph_14a_needs_a_signal(self) -> SiteConfig:
        marked = any(
            charger.paragraph_14a or any(c.paragraph_14a for c in charger.connectors)
            for charger in self.chargers
        )
        if marked and self.grid_operator is None:
            raise ValueError(
                "chargers or connectors are marked paragraph_14a but the site has no "
                "[grid_operator]: add it (the source of the dimming signal) or drop the marks"
            )
        return self
