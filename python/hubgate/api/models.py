"""Request and response bodies of the API (their JSON Schemas document it)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, time
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue, model_validator

from hubgate.cloud.store import Hold
from hubgate.config.model import PRIORITY_MAX, LimitSchedule
from hubgate.config.services import GroupName
from hubgate.config.tokens import ListedToken
from hubgate.control.deadlines import SocTarget
from hubgate.control.decisions import DecisionRecord, GridSample
from hubgate.control.limits import AuditEntry, Lease, Limit, LimitInForce

MAX_LEASE_S = 86_400.0

# Numbers in bodies are JSON numbers and finite: no "10" for 10 A, no false for 0 A, no NaN,
# Infinity or 1e309 (each is answered 422).
Amps = Annotated[float, Field(ge=0, le=100_000, strict=True, allow_inf_nan=False)]
Kilowatts = Annotated[float, Field(ge=0, le=1_000_000, strict=True, allow_inf_nan=False)]
LeaseSeconds = Annotated[float, Field(gt=0, le=MAX_LEASE_S, strict=True, allow_inf_nan=False)]


class Body(BaseModel):
    """Base of every API body: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class LimitValue(Body):
    """A per-phase current limit and/or a power limit; null means no limit of that kind."""

    phase_a: tuple[Amps, Amps, Amps] | None = Field(
        default=None, description="Per-phase current limit [L1, L2, L3] in A"
    )
    power_kw: Kilowatts | None = Field(default=None, description="Active power limit in kW")

    @classmethod
    def of(cls, limit: Limit) -> LimitValue:
        """The body form of a control limit."""
        return cls(phase_a=limit.phase_a, power_kw=limit.power_kw)


class LimitWrite(LimitValue):
    """A limit set through the API: a lease that lapses after `lease_s` unless renewed."""

    lease_s: LeaseSeconds = Field(
        description="How long the limit holds, in seconds (renew before it lapses)"
    )

    @model_validator(mode="after")
    def _limits_something(self) -> LimitWrite:
        if self.phase_a is None and self.power_kw is None:
            raise ValueError("give phase_a and/or power_kw (DELETE clears the API's limit)")
        return self

    def limit(self) -> Limit:
        """The control limit this write asks for."""
        return Limit(self.phase_a, self.power_kw)


class LeaseView(Body):
    """One lease held on a target."""

    target: str
    source: str
    limit: LimitValue
    expires_in_s: float | None = Field(description="Seconds left; null for a permanent lease")
    origin: str

    @classmethod
    def of(cls, lease: Lease, now: float) -> LeaseView:
        """The view of `lease` at monotonic time `now`."""
        left = None if lease.expires_at is None else max(0.0, lease.expires_at - now)
        return cls(
            target=lease.target,
            source=lease.source.value,
            limit=LimitValue.of(lease.limit),
            expires_in_s=left,
            origin=lease.origin,
        )


class TargetLimits(Body):
    """The limit in force on one target, the sources that bind it and every lease."""

    target: str
    kind: Literal["site", "node", "connector"]
    in_force: LimitValue
    sources: tuple[str, ...]
    leases: tuple[LeaseView, ...]

    @classmethod
    def of(
        cls,
        target: str,
        kind: Literal["site", "node", "connector"],
        in_force: LimitInForce,
        leases: tuple[LeaseView, ...],
    ) -> TargetLimits:
        """The view of one target."""
        return cls(
            target=target,
            kind=kind,
            in_force=LimitValue.of(in_force.limit),
            sources=tuple(s.value for s in in_force.sources),
            leases=leases,
        )


class AuditView(Body):
    """One change of a limit."""

    wall_time: float
    action: str
    target: str
    source: str
    limit: LimitValue
    origin: str
    lease_s: float | None = Field(description="Lease length when set; null when permanent")

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditView:
        """The view of an audit entry."""
        return cls(
            wall_time=entry.wall_time,
            action=entry.action.value,
            target=entry.target,
            source=entry.source.value,
            limit=LimitValue.of(entry.limit),
            origin=entry.origin,
            lease_s=None if entry.expires_at is None else entry.expires_at - entry.at,
        )


def _json(value: object) -> JsonValue:
    """A decision input as JSON: sequences become arrays, mappings objects, the rest text."""
    if value is None or isinstance(value, str | int | float):
        return value
    if isinstance(value, Mapping):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    return str(value)


class ConnectorDecisionView(Body):
    """The outcome for one connector in one cycle."""

    connector: str
    setpoint_a: float
    phases: int
    reason: str
    binding: str | None


Phases = tuple[float, float, float]


class GridSampleView(Body):
    """The grid connection in one cycle: current, setpoints' sum and the limit in force."""

    cycle: int
    wall_time: float
    measured_a: Phases | None = Field(description="Per phase, negative when exporting")
    commanded_a: Phases
    limit_a: Phases = Field(description="Limit in force per phase (power limits as current)")
    limit_kw: float
    source: str = Field(description="What set the limit: cap, grid-operator, api, csms, ...")

    @classmethod
    def of(cls, cycle: int, grid: GridSample) -> GridSampleView:
        """The view of cycle `cycle`'s grid sample."""
        return cls(
            cycle=cycle,
            wall_time=grid.wall_time,
            measured_a=grid.measured_a,
            commanded_a=grid.commanded_a,
            limit_a=grid.limit_a,
            limit_kw=grid.limit_kw,
            source=grid.source,
        )


class DecisionView(Body):
    """One control cycle: inputs, outcomes and notes."""

    cycle: int
    at: float
    inputs: dict[str, JsonValue]
    connectors: tuple[ConnectorDecisionView, ...]
    notes: tuple[str, ...]
    grid: GridSampleView | None = None

    @classmethod
    def of(cls, record: DecisionRecord) -> DecisionView:
        """The view of a decision record."""
        return cls(
            cycle=record.cycle,
            at=record.at,
            grid=None if record.grid is None else GridSampleView.of(record.cycle, record.grid),
            inputs={key: _json(value) for key, value in record.inputs.items()},
            connectors=tuple(
                ConnectorDecisionView(
                    connector=c.connector,
                    setpoint_a=c.setpoint_a,
                    phases=c.phases,
                    reason=c.reason,
                    binding=c.binding,
                )
                for c in record.connectors
            ),
            notes=record.notes,
        )


class PriorityWrite(Body):
    """A connector's priority tier: higher tiers are served first."""

    priority: int = Field(ge=0, le=PRIORITY_MAX, strict=True)


class PvModeWrite(Body):
    """Whether a connector charges from PV surplus (and battery discharge) only."""

    pv_mode: bool = Field(strict=True)


class SessionWrite(Body):
    """A session's need (an energy, or a state of charge with the battery's capacity) and
    departure; none: no deadline (plain fair share)."""

    energy_kwh: float | None = Field(
        default=None,
        gt=0,
        le=10_000,
        strict=True,
        allow_inf_nan=False,
        description="Energy to add from now on",
    )
    departure: AwareDatetime | None = Field(
        default=None, description="When the vehicle leaves (ISO 8601 with a UTC offset)"
    )
    max_current_a: float | None = Field(
        default=None,
        gt=0,
        le=1000,
        allow_inf_nan=False,
        description="The most the vehicle takes per phase, A (its EVMaxCurrent), if known",
    )
    target_soc: float | None = Field(
        default=None,
        gt=0,
        le=100,
        allow_inf_nan=False,
        description="Instead of energy_kwh: the state of charge to reach, % (with battery_kwh; "
        "planned once the charger reports the EV's state of charge)",
    )
    battery_kwh: float | None = Field(
        default=None,
        gt=0,
        le=10_000,
        allow_inf_nan=False,
        description="The battery's usable capacity, with target_soc",
    )

    @model_validator(mode="after")
    def _need_and_departure(self) -> SessionWrite:
        if (self.target_soc is None) != (self.battery_kwh is None):
            raise ValueError("give target_soc together with battery_kwh")
        if self.energy_kwh is not None and self.target_soc is not None:
            raise ValueError("give energy_kwh or target_soc, not both")
        if (self.energy_kwh is None and self.target_soc is None) != (self.departure is None):
            raise ValueError(
                "give both a need (energy_kwh, or target_soc with battery_kwh) and departure, "
                "or neither to clear"
            )
        return self

    def target(self) -> SocTarget | None:
        """The state of charge to reach, None for an energy need."""
        if self.target_soc is None or self.battery_kwh is None:
            return None
        return SocTarget(self.target_soc, self.battery_kwh * 1000)


class StartCharging(Body):
    """Start a session; the id tag defaults to the gateway's own."""

    id_tag: str | None = Field(default=None, min_length=1, max_length=36, strict=True)


class Accepted(Body):
    """A write that was taken."""

    accepted: Literal[True] = True
    detail: str


class Health(Body):
    """Is the gateway running its cycles, and which devices are unreachable."""

    status: Literal["starting", "ok", "degraded"]
    cycle: int | None
    snapshot_age_s: float | None
    devices: int
    unreachable: tuple[str, ...]


class HoldView(Body):
    """A transaction whose messages the CSMS proxy keeps back until an operator decides."""

    charge_point: str = Field(description="The charger's OCPP identity")
    transaction: str = Field(
        description="As the charger knows it: a 1.6 local (negative) id, a 2.0.1 transactionId"
    )
    reason: str = Field(description="Why it is held: the CSMS's refusal")
    csms_transaction_id: int | None = Field(
        description="The id the CSMS gave the transaction, when it gave one"
    )
    since: float = Field(description="Wall-clock time it was held, seconds since the epoch")
    messages: int = Field(description="How many of its messages wait")

    @classmethod
    def of(cls, hold: Hold) -> HoldView:
        """The view of a held transaction."""
        return cls(
            charge_point=hold.charge_point,
            transaction=hold.transaction,
            reason=hold.reason,
            csms_transaction_id=hold.csms_transaction_id,
            since=hold.since,
            messages=hold.messages,
        )


class ReleaseHold(Body):
    """Send a held transaction's messages to the CSMS after all."""

    transaction_id: Annotated[int, Field(ge=0, le=2**31 - 1, strict=True)] | None = Field(
        default=None,
        description="OCPP 1.6: the CSMS transaction id to send them with (default: the one "
        "the CSMS gave, if any); ignored for 2.x transactions, whose ids are the charger's",
    )


class TokenWrite(Body):
    """An id token to keep in the site's tokens file."""

    group: GroupName | None = Field(default=None, description="One of [authorization.groups]")
    expires: AwareDatetime | None = Field(
        default=None, description="From then on it counts as Expired (RFC 3339, with offset)"
    )
    blocked: bool = Field(default=False, strict=True, description="Known, but may not charge")


class TokenView(TokenWrite):
    """An id token, where it is defined, and what it gets now."""

    id: str
    source: Literal["site", "file"] = Field(
        description="site: the site file's [authorization] (read-only here); file: tokens_file"
    )
    status: Literal["Accepted", "Blocked", "Expired"] = Field(description="Its status now")

    @classmethod
    def of(cls, listed: ListedToken, status: str) -> TokenView:
        """The view of a listed token with its status now."""
        token = listed.token
        return cls.model_validate(
            {
                "id": token.id,
                "group": token.group,
                "expires": token.expires,
                "blocked": token.blocked,
                "source": listed.source,
                "status": status,
            }
        )


class WindowBody(Body):
    """A window of local time (the site's timezone) on some weekdays or dates."""

    days: tuple[str, ...] = Field(
        default=("mon-sun",), description="Day names (mon..sun) or ranges (mon-fri)"
    )
    dates: tuple[date, ...] = Field(default=(), description="Only on these dates, YYYY-MM-DD")
    start: time = Field(description="Local start, HH:MM")
    end: time = Field(description="Local end, HH:MM; at or before start: the next day")


class ScheduleWrite(Body):
    """A limit on a node (or `grid`) during windows or a site-file tariff period."""

    node: str = Field(default="grid", description="The node limited, or 'grid'")
    limit: LimitValue
    tariff: str | None = Field(default=None, description="A [[tariff_periods]] name")
    windows: tuple[WindowBody, ...] = ()

    def config(self, name: str) -> LimitSchedule:
        """The site-file form of this schedule (ValueError, like the site file's check)."""
        return LimitSchedule.model_validate(
            {
                "name": name,
                "node": self.node,
                "power_limit_kw": self.limit.power_kw,
                "phase_current_limit_a": self.limit.phase_a,
                "tariff": self.tariff,
                "windows": [w.model_dump() for w in self.windows],
            }
        )


class WindowView(Body):
    """A schedule's window: weekdays (mon..sun) or dates, local start and end."""

    days: tuple[str, ...]
    dates: tuple[date, ...]
    start: time
    end: time


class ScheduleView(Body):
    """A schedule as it stands: its target, limit, windows and who set it."""

    name: str
    target: str
    limit: LimitValue
    tariff: str | None
    windows: tuple[WindowView, ...]
    origin: str
    site_file: bool = Field(description="From the site file (the API cannot change it)")


class SegmentView(Body):
    """A stretch of the schedule ahead: the tightest scheduled limit on a target then."""

    target: str
    start: float = Field(description="Epoch s")
    end: float = Field(description="Epoch s")
    limit: LimitValue
    schedules: tuple[str, ...]


class SchedulesView(Body):
    """Every schedule and the next 24 hours of what they hold."""

    schedules: tuple[ScheduleView, ...]
    ahead: tuple[SegmentView, ...]


MAX_PRICES = 7 * 96

Price = Annotated[float, Field(ge=-100, le=100, strict=True, allow_inf_nan=False)]


class PricesWrite(Body):
    """Energy prices per kWh (any currency) for consecutive intervals from `start`."""

    start: AwareDatetime = Field(description="Start of the first interval, with a UTC offset")
    interval_min: Literal[15, 30, 60] = 60
    prices: tuple[Price, ...] = Field(min_length=1, max_length=MAX_PRICES)


class PriceView(Body):
    """One interval's price."""

    start: float = Field(description="Epoch s")
    end: float = Field(description="Epoch s")
    price: float
