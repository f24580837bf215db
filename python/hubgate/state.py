"""The live state of the site: what the API, dashboard, metrics and MQTT show.

The control loop publishes one `SiteState` snapshot per cycle into the
`StateHub`; readers take the latest snapshot or subscribe to every new one.
Snapshots are immutable pydantic models, so they are safe to share between
tasks and their JSON Schema documents the API.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import StrEnum

import trio
from pydantic import BaseModel, ConfigDict, Field

PhaseCurrents = tuple[float, float, float]


class Snapshot(BaseModel):
    """Base of the state models: immutable, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class LimitBoundView(Snapshot):
    """One limit on a node: its rating (`cap`), a lease, or the peak target."""

    source: str = Field(
        description="cap, grid-operator, api, csms, modbus-server, config or peak-target"
    )
    phase_a: PhaseCurrents | None = None
    power_kw: float | None = None
    expires_at: float | None = Field(
        default=None, description="Wall-clock time it lapses; null: until changed"
    )
    origin: str = ""


class NodeState(Snapshot):
    """A point of the electrical tree (the grid connection is node `grid`)."""

    id: str
    kind: str
    parent: str | None
    measured_a: PhaseCurrents | None = Field(
        description="Measured current per phase, if metered (negative: export)"
    )
    measured_age_s: float | None = Field(
        default=None, description="Age of the measurement at the snapshot, s"
    )
    commanded_a: PhaseCurrents = Field(description="Sum of setpoints below this node per phase")
    limit_a: PhaseCurrents | None = Field(
        description="Per-phase limit in force: the tightest of its rating and every lease, "
        "power limits as current on three phases; null when it has none"
    )
    power_limit_kw: float | None = Field(
        default=None, description="The limit in force as power at the site's voltage"
    )
    limit_source: str | None = Field(
        default=None, description="What sets the tightest phase's limit (cap, grid-operator, ...)"
    )
    limit_expires_at: float | None = Field(
        default=None, description="Wall-clock time the binding limit lapses; null: until changed"
    )
    limit_sources: tuple[str, ...] = Field(default=(), description="Sources holding a lease")
    limit_bounds: tuple[LimitBoundView, ...] = Field(
        default=(), description="Every limit on the node, the limit in force is the tightest"
    )
    budget_share: float = Field(default=1.0, description="Below 1 while its meter is lost")
    meter_health: str | None = None

    def utilisation(self) -> float | None:
        """Highest measured (or commanded) phase current over its limit, 0..1+."""
        if self.limit_a is None:
            return None
        used = self.measured_a or self.commanded_a
        shares = [u / lim for u, lim in zip(used, self.limit_a, strict=True) if lim > 0]
        return max(shares) if shares else None


class SessionView(Snapshot):
    """The session on a connector: its energy need, departure and how it is going."""

    energy_kwh: float = Field(description="Energy delivered since the session began")
    needed_kwh: float | None = Field(default=None, description="Energy the session needs in all")
    departure: datetime | None = None
    source: str | None = Field(
        default=None, description="Where the need came from: api, ocpp or site"
    )
    planned_now_kw: float = Field(default=0.0, description="What the deadline plan asks now")
    laxity_s: float | None = Field(
        default=None,
        description="Time to departure minus time needed at its maximum (negative: late)",
    )
    projected_finish: datetime | None = Field(
        default=None, description="When it has its energy at its current power"
    )
    shortfall_kwh: float = Field(
        default=0.0, description="What no schedule within the site's limits delivers in time"
    )
    at_risk: bool = Field(default=False, description="It will not have its energy by departure")
    ev_max_a: float | None = Field(
        default=None,
        description="The most its EV takes per phase, A, as told with the need (null: not told)",
    )


class ConnectorState(Snapshot):
    """One connector: what it does, what it was given and why."""

    key: str = Field(description="`charger-id#connector-id`")
    charger: str
    connector: int
    node: str
    protocol: str = Field(description="ocpp or modbus")
    status: str = Field(description="Available, Charging, SuspendedEV, Faulted, ... or IEC A-F")
    setpoint_a: float
    phases: int
    measured_a: PhaseCurrents | None = None
    power_kw: float | None = None
    energy_kwh: float | None = None
    soc_percent: float | None = None
    measured_age_s: float | None = Field(
        default=None, description="Age of its latest reading at the snapshot, s"
    )
    stale: bool = Field(
        default=False,
        description="Its reading is older than the control rules accept (or it is "
        "unreachable): shown, not trusted",
    )
    unreachable_since: float | None = Field(
        default=None, description="Wall-clock time of its last answer, while unreachable"
    )
    reserved_a: float | None = Field(
        default=None,
        description="What it is reserved at instead of its reading (unreachable, failsafe "
        "not verified, not following its limit)",
    )
    priority: int = 0
    pv_mode: bool = Field(default=False, description="Charges from PV surplus only")
    reason: str = ""
    binding: str | None = None
    session: SessionView | None = None


class DeviceHealth(Snapshot):
    """Reachability and request statistics of one device."""

    id: str
    kind: str
    protocol: str
    reachable: bool
    last_ok_age_s: float | None = Field(
        default=None, description="Since its last good answer (reading), s; null: none yet"
    )
    requests: int = Field(default=0, description="Requests or calls hubgate made to it")
    errors: int = Field(default=0, description="Of those: timed out, failed or rejected")
    rejected: int = Field(
        default=0, description="Answered with an error (Modbus exception, OCPP CallError)"
    )
    timeouts: int = 0
    latency_p50_ms: float | None = Field(
        default=None, description="Measured answer latency (streaming sketch, 1 % accuracy)"
    )
    latency_p99_ms: float | None = None
    last_message_age_s: float | None = Field(
        default=None, description="OCPP: since its last message, s"
    )
    messages_per_min: float | None = Field(
        default=None, description="OCPP: messages it sent in the last minute"
    )
    device_failsafe: bool | None = Field(
        default=None,
        description="Whether the device falls back on its own when hubgate stops commanding "
        "it (false: it keeps its last setpoint); null where no profile says",
    )


class ChargerCapabilitiesView(Snapshot):
    """What an OCPP charger takes (`docs/ocpp.md`, "Capabilities"); None: not reported."""

    rate_units: tuple[str, ...] = Field(description="A, W or both; profiles use the first")
    max_stack_level: int | None = None
    max_profiles: int | None = None
    max_periods: int | None = None
    phase_switch: bool | None = Field(default=None, description="3 to 1 phase switching")
    clock_offset_s: float | None = Field(default=None, description="Its clock minus ours")
    honours_valid_to: bool | None = Field(
        default=None, description="Seen dropping a profile at its validTo (composite schedule)"
    )
    source: str = Field(description="reported, stored or default, + site file when corrected")


class ProvisioningView(Snapshot):
    """Meter values asked of a charger at its last boot, and its answers."""

    interval_s: int
    measurands: tuple[str, ...] | None = Field(description="The list it accepted")
    accepted: dict[str, str] = Field(default_factory=dict)
    rejected: dict[str, str] = Field(default_factory=dict)


class LimitTrust(Snapshot):
    """Whether one connector applies the limits hubgate sends it."""

    connector: int
    status: str = Field(description="following, not following or unverified")
    evidence: str = ""
    lease: str | None = Field(default=None, description="levels, schedule or none")
    purpose: str | None = None
    shared: bool = Field(
        default=False,
        description="Its limit is its share of one station-wide limit (per-connector refused)",
    )


class ChargerInfo(Snapshot):
    """An OCPP charger as hubgate knows it: identity, capabilities, provisioning, trust."""

    id: str
    identity: str
    version: str | None = None
    connected: bool
    vendor: str | None = None
    model: str | None = None
    firmware: str | None = None
    connections: int = Field(default=0, description="Connections since hubgate started")
    boots: int = Field(default=0, description="BootNotifications since hubgate started")
    boot_delay_s: float | None = Field(
        default=None, description="How long after connecting it sent its BootNotification"
    )
    capabilities: ChargerCapabilitiesView
    discovery_error: str | None = None
    provisioning: ProvisioningView | None = None
    connectors: tuple[LimitTrust, ...] = ()


class EventLevel(StrEnum):
    """How much an event matters (its severity): info < warning < alarm."""

    INFO = "info"
    WARNING = "warning"
    ALARM = "alarm"

    @property
    def rank(self) -> int:
        """0 for info, 1 for warning, 2 for alarm."""
        return _LEVEL_RANK[self]


_LEVEL_RANK = {EventLevel.INFO: 0, EventLevel.WARNING: 1, EventLevel.ALARM: 2}


class EventCategory(StrEnum):
    """What an event is about."""

    LIMIT = "limit"
    """A limit set, cleared or lapsed (API, CSMS, Modbus server leases)."""
    GRID_OPERATOR = "grid-operator"
    """The grid operator's limit stepped, or its source was lost or is back."""
    DEVICE = "device"
    """A charger, meter, battery, PV inverter or the grid-operator box lost or back."""
    METER = "meter"
    """A node's budget degraded because its meter is lost, or trusted again."""
    CHARGER = "charger"
    """A charger's failsafe, whether it follows its limits."""
    CSMS = "csms"
    """The cloud CSMS lost or back, messages held for it."""
    BATTERY = "battery"
    """The stationary battery's mode or command."""
    CONFIG = "config"
    """The site configuration loaded."""
    CONTROL = "control"
    """The control loop itself and operator commands."""


class Event(Snapshot):
    """Something that happened: a device lost, a limit changed, a failsafe engaged. Events
    of one kind that come together (213 devices unreachable) are one event listing them."""

    id: int = Field(default=0, description="Order in the event log (the live stream's id)")
    at: float = Field(description="Wall-clock time, seconds since the epoch")
    until: float | None = Field(
        default=None, description="For an event of several: when the last one came"
    )
    severity: EventLevel
    category: EventCategory
    subject: str
    message: str
    members: tuple[str, ...] = Field(
        default=(), description="For an event of several: each device, connector, ..."
    )

    def line(self) -> str:
        """The event as one log line."""
        shown = ", ".join(self.members[:_MEMBERS_IN_LINE])
        more = len(self.members) - _MEMBERS_IN_LINE
        listed = f" ({shown}{f', +{more} more' if more > 0 else ''})" if self.members else ""
        return f"[{self.category}] {self.subject}: {self.message}{listed}"


_MEMBERS_IN_LINE = 8


class ChargingSession(Snapshot):
    """One charging session: from an EV plugged in (or a transaction started) to unplugged."""

    id: int
    connector: str = Field(description="`charger-id#connector-id`")
    transaction_id: str | None = None
    id_token: str | None = None
    started_at: float = Field(description="Wall-clock time, seconds since the epoch")
    stopped_at: float | None = Field(default=None, description="Null while it goes on")
    energy_kwh: float = Field(
        description="Delivered: the connector's meter, else its power over time"
    )
    peak_current_a: float = Field(description="Highest phase current measured")
    max_setpoint_a: float | None = None
    min_setpoint_a: float | None = None
    limited_s: dict[str, float] = Field(
        default_factory=dict,
        description="Seconds it was held below what it could take, by allocation reason",
    )
    stop_reason: str | None = None


class EnergyState(Snapshot):
    """The stationary battery and PV: what the battery does and why, the PV-mode budget."""

    battery_mode: str = Field(
        description="idle, peak-shaving, pv-charge, grid-charge, unavailable or no-grid-meter"
    )
    battery_soc_percent: float | None = None
    battery_power_kw: float | None = Field(default=None, description="Positive = discharging")
    battery_command_kw: float | None = Field(default=None, description="Positive = discharge")
    pv_power_kw: float | None = None
    grid_import_kw: float | None = None
    peak_target_kw: float | None = None
    pv_budget_kw: float = Field(description="What PV-mode connectors may draw together")
    reasons: tuple[str, ...] = ()


class DemandSnapshot(Snapshot):
    """Demand charges: the metering interval's import and the month's peak."""

    interval_start: datetime
    interval_min: float
    average_kw: float = Field(description="The interval's average import so far")
    projection_kw: float = Field(description="Its average if the present import holds")
    target_kw: float | None = Field(description="Configured, else the month's peak so far")
    month_peak_kw: float = Field(description="The highest closed interval this month")
    cap_kw: float | None = Field(description="What the rest of the interval may import")


class SiteState(Snapshot):
    """One snapshot of the whole site, published once per control cycle."""

    site: str
    cycle: int
    at: float = Field(description="Wall-clock time of the snapshot")
    cycle_time_ms: float | None = None
    nodes: tuple[NodeState, ...]
    connectors: tuple[ConnectorState, ...]
    devices: tuple[DeviceHealth, ...] = ()
    events: tuple[Event, ...] = Field(
        default=(),
        description="Recent events, newest last (warnings and alarms are kept over info)",
    )
    energy: EnergyState | None = Field(default=None, description="Battery and PV, when present")
    demand: DemandSnapshot | None = Field(default=None, description="With [demand] only")

    def node(self, node_id: str) -> NodeState:
        """The node with that id (`grid` for the connection)."""
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)


class StateHub:
    """Holds the latest snapshot and wakes every reader waiting for a new one.

    Publishing never blocks the control loop. A slow reader skips the
    snapshots it was too slow for and always gets the newest. A snapshot may be
    published as the function that builds it: it is built when first read, so a
    cycle nobody reads costs nothing to publish.
    """

    def __init__(self) -> None:
        self._latest: SiteState | None = None
        self._build: Callable[[], SiteState] | None = None
        self._version = 0
        self._changed = trio.Event()

    @property
    def latest(self) -> SiteState | None:
        """The newest snapshot, or None before the first cycle."""
        if self._build is not None:
            build, self._build = self._build, None
            self._latest = build()
        return self._latest

    def publish(self, state: SiteState | Callable[[], SiteState]) -> None:
        """Make `state` the latest (a function: what it returns, built on the first read)
        and wake every waiting reader."""
        if isinstance(state, SiteState):
            self._latest, self._build = state, None
        else:
            self._build = state
        self._version += 1
        self._changed.set()
        self._changed = trio.Event()

    async def wait_newer(self, seen: int) -> tuple[int, SiteState]:
        """Wait for a snapshot newer than version `seen` (0: none seen yet).

        Returns the newest version and snapshot; readers loop with
        `seen, state = await hub.wait_newer(seen)`.
        """
        while self._version == seen or self._version == 0:
            await self._changed.wait()
        latest = self.latest
        assert latest is not None, "a version above 0 has a snapshot"
        return self._version, latest
