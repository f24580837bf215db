"""Allocator setpoints → OCPP charging profiles with device-side leases.

Each charger gets two profiles of the same purpose: a permanent *base* profile
at a low stack level holding the failsafe current, and a *limit* profile one
level above it whose `validTo` is now + lease. Within a purpose the highest
valid stack level wins, so while hubgate renews the lease the charger follows
the setpoint, and when hubgate is gone it falls back to the failsafe by itself.

`LeasePlanner` decides (sans-IO, time as input) when a new limit must go out:
decreases at once (however small), increases only beyond a deadband and a minimum interval,
and renewals before the lease runs out. `ProfileLease` does the sending and
falls back to the next purpose when a charger rejects one.
"""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import trio

from hubgate.config.model import OcppVersion
from hubgate.ocpp.errors import OcppCallError, OcppCallTimeoutError, OcppSessionClosedError
from hubgate.ocpp.registry import StationRegistry
from hubgate.ocpp.rpc import Payload
from hubgate.ocpp.session import OcppSession

LOG = logging.getLogger("hubgate.ocpp")

RateUnit = Literal["A", "W"]

PURPOSES_V16 = ("ChargePointMaxProfile", "TxDefaultProfile")
PURPOSES_V2 = ("ChargingStationMaxProfile", "TxDefaultProfile")
"""Preferred purpose first; the next one is tried when a charger rejects it."""


SCHEDULE_BACKDATE = timedelta(minutes=1)
"""Schedules start a little in the past, so a charger whose clock runs ahead of ours has no
gap before the new profile applies (1.6 §5.16 recommends a past startSchedule on refresh)."""


@dataclass(frozen=True)
class Setpoint:
    """What the allocator wants a charger (or connector) to draw: amperes per phase."""

    current_a: float
    phases: Literal[1, 3] = 3


@dataclass(frozen=True)
class ChargerCapabilities:
    """How a charger takes limits."""

    rate_unit: RateUnit = "A"
    voltage_v: float = 230.0


@dataclass(frozen=True)
class LeaseSettings:
    """Lease, failsafe and flood protection."""

    lease_s: float = 60.0
    renew_before_s: float = 20.0
    failsafe_current_a: float = 6.0
    deadband_a: float = 0.5
    min_increase_interval_s: float = 5.0
    base_stack_level: int = 0
    base_profile_id: int = 9001
    limit_profile_id: int = 9002


DECREASE_TOLERANCE_A = 1e-6
"""A setpoint lower than the last one by more than this is a decrease (float noise is not)."""


class LeasePlanner:
    """Decides when a new limit profile must be sent (times are monotonic seconds).

    `spread` (0 to 1) renews that share of half the renewal margin earlier: leases
    first sent together (a gateway start) then come due over several cycles, not in one.
    """

    def __init__(self, settings: LeaseSettings, *, spread: float = 0.0) -> None:
        if not 0.0 <= spread <= 1.0:
            raise ValueError(f"spread is between 0 and 1, not {spread}")
        self.settings = settings
        self._renew_after_s = settings.lease_s - settings.renew_before_s * (1 + spread / 2)
        self._last: Setpoint | None = None
        self._sent_at = -math.inf

    def due(self, setpoint: Setpoint, now: float) -> bool:
        """Whether `setpoint` must go out now."""
        last, s = self._last, self.settings
        if last is None or last.phases != setpoint.phases:
            return True
        if now >= self._sent_at + self._renew_after_s:
            return True
        change = setpoint.current_a - last.current_a
        if change < -DECREASE_TOLERANCE_A:
            # Never held back: the allocator counts on it, and a site over its limit is
            # brought back by decreases of a step or two.
            return True
        return change >= s.deadband_a and now - self._sent_at >= s.min_increase_interval_s

    @property
    def last(self) -> Setpoint | None:
        """The setpoint last accepted by the charger."""
        return self._last

    def sent(self, setpoint: Setpoint, now: float) -> None:
        """Record that `setpoint` was accepted by the charger at `now`."""
        self._last = setpoint
        self._sent_at = now

    def forget(self) -> None:
        """Start over (new connection: the charger may have lost its profiles)."""
        self._last = None
        self._sent_at = -math.inf


def schedule_limit(setpoint: Setpoint, capabilities: ChargerCapabilities) -> float:
    """The schedule's limit in the charger's unit, rounded down to 0.1 (1.6 multipleOf 0.1)."""
    value = setpoint.current_a
    if capabilities.rate_unit == "W":
        value *= capabilities.voltage_v * setpoint.phases
    return math.floor(max(value, 0.0) * 10 + 1e-9) / 10


def _timestamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def set_charging_profile(
    version: OcppVersion,
    *,
    connector_id: int,
    profile_id: int,
    stack_level: int,
    purpose: str,
    setpoint: Setpoint,
    capabilities: ChargerCapabilities,
    now: datetime,
    valid_to: datetime | None,
) -> Payload:
    """A SetChargingProfile request: one Absolute period, in force until `valid_to` (or for good)."""
    period = {
        "startPeriod": 0,
        "limit": schedule_limit(setpoint, capabilities),
        "numberPhases": setpoint.phases,
    }
    schedule = {
        "chargingRateUnit": capabilities.rate_unit,
        "startSchedule": _timestamp(now - SCHEDULE_BACKDATE),
        "chargingSchedulePeriod": [period],
    }
    validity = {} if valid_to is None else {"validTo": _timestamp(valid_to)}
    if version is OcppVersion.V16:
        profile = {
            "chargingProfileId": profile_id,
            "stackLevel": stack_level,
            "chargingProfilePurpose": purpose,
            "chargingProfileKind": "Absolute",
            "chargingSchedule": schedule,
            **validity,
        }
        return {"connectorId": connector_id, "csChargingProfiles": profile}
    profile = {
        "id": profile_id,
        "stackLevel": stack_level,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": "Absolute",
        "chargingSchedule": [{"id": profile_id, **schedule}],
        **validity,
    }
    return {"evseId": connector_id, "chargingProfile": profile}


class ProfileLease:
    """Keeps one charger's (or connector's) limit in force through one session."""

    def __init__(
        self,
        session: OcppSession,
        *,
        connector_id: int = 0,
        settings: LeaseSettings | None = None,
        capabilities: ChargerCapabilities | None = None,
    ) -> None:
        self.session = session
        self.connector_id = connector_id
        self.settings = settings or LeaseSettings()
        self.capabilities = capabilities or ChargerCapabilities()
        spread = zlib.crc32(f"{session.identity}#{connector_id}".encode()) / 2**32
        self.planner = LeasePlanner(self.settings, spread=spread)
        purposes = PURPOSES_V16 if session.version is OcppVersion.V16 else PURPOSES_V2
        # A station-wide maximum exists only for connector 0.
        self._purposes = list(purposes if connector_id == 0 else purposes[1:])
        self._base_installed = False

    @property
    def purpose(self) -> str:
        """The purpose in use (the preferred one until a charger rejects it)."""
        return self._purposes[0]

    async def apply(self, setpoint: Setpoint) -> bool:
        """Send `setpoint` if the planner says so; True when a profile went out."""
        now = trio.current_time()
        if self._base_installed and not self.planner.due(setpoint, now):
            return False
        wall = datetime.now(UTC)
        while True:
            try:
                await self._ensure_base(setpoint.phases, wall)
                valid_to = wall + timedelta(seconds=self.settings.lease_s)
                await self._send(self.settings.limit_profile_id, 1, setpoint, wall, valid_to)
            except _RejectedError as rejected:
                self._next_purpose(rejected)
                continue
            self.planner.sent(setpoint, now)
            return True

    async def install_base(self, phases: Literal[1, 3] = 3) -> None:
        """Install the permanent failsafe profile now (it also goes out with the first limit)."""
        while True:
            try:
                await self._ensure_base(phases, datetime.now(UTC))
            except _RejectedError as rejected:
                self._next_purpose(rejected)
                continue
            return

    async def _ensure_base(self, phases: Literal[1, 3], wall: datetime) -> None:
        if not self._base_installed:
            failsafe = Setpoint(self.settings.failsafe_current_a, phases)
            await self._send(self.settings.base_profile_id, 0, failsafe, wall, None)
            self._base_installed = True

    def _next_purpose(self, rejected: _RejectedError) -> None:
        """Move to the next purpose, or raise when the charger rejected them all."""
        if len(self._purposes) == 1:
            raise OcppCallError("SetChargingProfile", "Rejected", str(rejected)) from None
        LOG.info("%s: %s rejected; trying the next purpose", self.session.identity, rejected)
        self._purposes.pop(0)
        self._base_installed = False

    async def _send(
        self,
        profile_id: int,
        level_above_base: int,
        setpoint: Setpoint,
        now: datetime,
        valid_to: datetime | None,
    ) -> None:
        payload = set_charging_profile(
            self.session.version,
            connector_id=self.connector_id,
            profile_id=profile_id,
            stack_level=self.settings.base_stack_level + level_above_base,
            purpose=self.purpose,
            setpoint=setpoint,
            capabilities=self.capabilities,
            now=now,
            valid_to=valid_to,
        )
        try:
            result = await self.session.call("SetChargingProfile", payload)
        except OcppCallError as exc:
            raise _RejectedError(f"{self.purpose} ({exc.code})") from None
        if result["status"] != "Accepted":
            raise _RejectedError(self.purpose)

    async def verify(self) -> bool | None:
        """Whether the charger's composite schedule honours the last setpoint sent.

        None when it cannot tell (nothing sent yet, or no composite schedule support).
        A charger that accepts profiles but keeps a higher limit answers False.
        """
        expected = self.planner.last
        if expected is None:
            return None
        try:
            applied = await self.composite_limit()
        except OcppCallError:
            return None
        if applied is None:
            return None
        honoured = applied <= schedule_limit(expected, self.capabilities) + 0.05
        if not honoured:
            LOG.warning(
                "%s: applies %s %s, above the %s sent",
                self.session.identity,
                applied,
                self.capabilities.rate_unit,
                schedule_limit(expected, self.capabilities),
            )
        return honoured

    async def composite_limit(self, duration_s: int = 60) -> float | None:
        """The limit the charger reports it applies now (GetCompositeSchedule), or None."""
        if self.session.version is OcppVersion.V16:
            request: Payload = {"connectorId": self.connector_id, "duration": duration_s}
        else:
            request = {"evseId": self.connector_id, "duration": duration_s}
        request["chargingRateUnit"] = self.capabilities.rate_unit
        result = await self.session.call("GetCompositeSchedule", request)
        if result["status"] != "Accepted":
            return None
        schedule = result.get("chargingSchedule") or result.get("schedule") or {}
        periods = schedule.get("chargingSchedulePeriod", [])
        return float(periods[0]["limit"]) if periods else None


class _RejectedError(Exception):
    """A charger answered SetChargingProfile with a status other than Accepted."""


async def discover_capabilities(
    session: OcppSession, voltage_v: float = 230.0
) -> ChargerCapabilities:
    """Ask the charger which rate unit it takes (amperes preferred when both)."""
    if session.version is OcppVersion.V16:
        key = "ChargingScheduleAllowedChargingRateUnit"
        result = await session.call("GetConfiguration", {"key": [key]})
        values = [k.get("value", "") for k in result.get("configurationKey", []) if k["key"] == key]
        units = values[0] if values else "Current"
        unit: RateUnit = "A" if "Current" in units else "W"
    else:
        query = {"component": {"name": "SmartChargingCtrlr"}, "variable": {"name": "RateUnit"}}
        result = await session.call("GetVariables", {"getVariableData": [query]})
        answers = result["getVariableResult"]
        units = answers[0].get("attributeValue", "A") if answers else "A"
        unit = "A" if "A" in units.split(",") else "W"
    return ChargerCapabilities(rate_unit=unit, voltage_v=voltage_v)


def lease_for_session(
    lease: ProfileLease | None,
    session: OcppSession | None,
    *,
    connector_id: int = 0,
    settings: LeaseSettings,
    capabilities: ChargerCapabilities | None,
) -> ProfileLease | None:
    """`lease` while it belongs to the charger's current session, else a fresh one (a
    reconnected charger may have lost its profiles); None while it is offline."""
    if session is None:
        return None
    if lease is not None and lease.session is session:
        return lease
    return ProfileLease(
        session, connector_id=connector_id, settings=settings, capabilities=capabilities
    )


class SmartCharging:
    """Leases for every connected charger; the control loop feeds it setpoints each cycle.

    A charger's lease is rebuilt when its session changes (reconnect), so the base
    profile goes out again; a charger that fails a call is logged and skipped, never
    holding up the others.
    """

    def __init__(
        self,
        registry: StationRegistry,
        settings: LeaseSettings | None = None,
        capabilities: Mapping[str, ChargerCapabilities] | None = None,
    ) -> None:
        self.registry = registry
        self.settings = settings or LeaseSettings()
        self.capabilities = dict(capabilities or {})
        self._leases: dict[str, ProfileLease] = {}

    async def apply(self, setpoints: Mapping[str, Setpoint]) -> dict[str, bool]:
        """Send what is due, concurrently; identity → whether a profile went out."""
        sent: dict[str, bool] = {}
        async with trio.open_nursery() as nursery:
            for identity, setpoint in setpoints.items():
                lease = self._lease(identity)
                if lease is not None:
                    nursery.start_soon(self._apply_one, lease, setpoint, sent)
        return sent

    def _lease(self, identity: str) -> ProfileLease | None:
        station = self.registry.get(identity)
        if station is None:
            return None
        lease = lease_for_session(
            self._leases.get(identity),
            station.session,
            settings=self.settings,
            capabilities=self.capabilities.get(identity),
        )
        if lease is not None:
            self._leases[identity] = lease
        return lease

    async def _apply_one(
        self, lease: ProfileLease, setpoint: Setpoint, sent: dict[str, bool]
    ) -> None:
        identity = lease.session.identity
        try:
            sent[identity] = await lease.apply(setpoint)
        except (OcppCallError, OcppCallTimeoutError, OcppSessionClosedError) as exc:
            LOG.warning("%s: charging profile not applied: %s", identity, exc)
            sent[identity] = False
