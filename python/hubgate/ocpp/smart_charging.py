"""Allocator setpoints → OCPP charging profiles with device-side leases.

A lease keeps a charger at hubgate's setpoint while hubgate renews it and brings it
back to the failsafe current by itself when hubgate is gone. Three shapes, chosen from
what the charger takes (`lease_mode`):

- LEVELS: a permanent *base* profile at a low stack level holding the failsafe
  current, and a *limit* profile one level above it whose `validTo` is now + lease.
  Within a purpose the highest valid stack level wins, so when `validTo` passes the
  base applies again.
- SCHEDULE, for a charger with one stack level (EVBox Elvi reports
  ChargeProfileMaxStackLevel 0, lbbrhzn/ocpp#221), one found keeping a profile past
  its `validTo`, or one holding fewer profiles than two per lease: one profile whose schedule holds the setpoint for the lease and the
  failsafe current after it; renewing replaces it. It needs no second level and no
  `validTo`.
- RELATIVE, for a charger whose clock is off (NTP overriding the CSMS's time and back,
  Tinkerforge/esp32-firmware#317; 1970 stamps before it set its clock, matth-x/MicroOcpp#354):
  the schedule lease as a Relative TxDefaultProfile, no time of day in it (no
  startSchedule, no validTo). Its periods count from the connector's transaction start
  (1.6 §3.13.2 and §7.14; 2.0.1 K01; EVerest libocpp's profile.cpp: with no transaction the
  schedule starts now), so the failsafe period begins that long plus the lease after it:
  the elapsed time is the charger's own count, whatever its clock says, and hubgate's
  estimate of it errs short (a start is known only after it happened), so the lease never
  outlasts `lease_s`. A station maximum cannot be Relative (1.6 §3.13.1, 2.0.1 K01.FR.38):
  a charger that refuses it gets the other shapes back.

Every time goes out on the charger's clock (ours plus its measured offset) when that
clock is off, so a charger minutes behind does not see the schedule start in its future;
schedules start an hour back (`SCHEDULE_BACKDATE`), so one whose offset is not measured
yet (a 1.6 charger stamps nothing before a transaction) still has them in force. A lease
by `validTo` or by a schedule's periods runs on the charger's clock all the same; a 2.1
charger's limit profile also lapses `lease_s` after it loses hubgate (`maxOfflineDuration`,
counted by the charger, not read off its clock): a clock-independent lease.
Limits go out in the charger's unit: amperes per phase, or watts from the setpoint's
voltage and the phases the EV draws on.

`LeasePlanner` decides (sans-IO, time as input) when a new limit must go out:
decreases at once (however small), increases only beyond a deadband and a minimum interval,
and renewals before the lease runs out. `ProfileLease` does the sending, falls back to
the next purpose when a charger rejects one, and `verify`s with GetCompositeSchedule
that the charger applies what it was sent and lets the lease lapse.
"""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Literal

import trio

from hubgate.ocpp.capabilities import Capabilities, RateUnit, on_charger_clock
from hubgate.ocpp.composite_check import (
    VERIFY_TOLERANCE,
    CompositeSchedule,
    Verification,
    judge,
    parse_composite,
)
from hubgate.ocpp.errors import OcppCallError, OcppCallTimeoutError, OcppSessionClosedError
from hubgate.ocpp.registry import StationRegistry
from hubgate.ocpp.rpc import Payload
from hubgate.ocpp.session import OcppSession
from hubgate.ocpp.versions import OcppVersion

LOG = logging.getLogger("hubgate.ocpp")

NOMINAL_VOLTAGE_V = 230.0

PURPOSES_V16 = ("ChargePointMaxProfile", "TxDefaultProfile")
PURPOSES_V2 = ("ChargingStationMaxProfile", "TxDefaultProfile")
"""Preferred purpose first; the next one is tried when a charger rejects it."""


SCHEDULE_BACKDATE = timedelta(hours=1)
"""Schedules start in the past (1.6 §5.16 recommends it on refresh: no gap before the new
profile applies), an hour back: a charger whose clock is behind ours, by up to that, and
not measured yet still has the profile in force. It costs nothing: a lease's end is on the
charger's clock whatever the start (`validTo`, the fallback period)."""


class LeaseMode(StrEnum):
    """How a lease falls back to the failsafe current (module docstring)."""

    LEVELS = "levels"
    SCHEDULE = "schedule"
    RELATIVE = "relative"


def lease_mode(
    capabilities: Capabilities, leases: int = 1, *, relative: bool = True
) -> LeaseMode | None:
    """The lease a charger can hold; None when it can hold none (one stack level and one
    period per schedule): then it keeps the last limit it was sent. `leases`: how many
    hubgate keeps on it (one per connector it limits), sharing the profiles it can hold
    (MaxChargingProfilesInstalled): a levels lease takes two, a schedule lease one. A clock
    that is off gets a relative lease unless it was refused (not `relative`)."""
    two_periods = capabilities.max_periods != 1
    if relative and capabilities.clock_off and two_periods:
        return LeaseMode.RELATIVE
    room = capabilities.max_profiles
    if (
        capabilities.max_stack_level != 0
        and capabilities.honours_valid_to is not False
        and (room is None or room >= 2 * leases)
    ):
        return LeaseMode.LEVELS
    return LeaseMode.SCHEDULE if two_periods else None


@dataclass(frozen=True)
class Setpoint:
    """What the allocator wants a charger (or connector) to draw: amperes per phase.

    `voltage_v` and `active_phases` (the phases the EV draws on, when fewer than
    `phases`) or `dc_w_per_a` only matter to a charger that takes watts."""

    current_a: float
    phases: Literal[1, 3] = 3
    voltage_v: float = NOMINAL_VOLTAGE_V
    active_phases: int | None = None
    dc_w_per_a: float | None = None
    """For a DC charger: the DC power one ampere per AC phase delivers."""

    def watts(self, current_a: float | None = None) -> float:
        """`current_a` (default: the setpoint's) as total power on the phases in use (a DC
        charger: as DC power)."""
        amperes = self.current_a if current_a is None else current_a
        if self.dc_w_per_a is not None:
            return amperes * self.dc_w_per_a
        return amperes * self.voltage_v * min(self.phases, self.active_phases or self.phases)


PROFILE_IDS_PER_CONNECTOR = 100
"""A charger replaces a stored profile that has the id of a new one, whatever its connector
(1.6 SetChargingProfile; 2.0.1 K01.FR.05): each connector's profiles need their own ids,
else the limit sent to one connector removes the other's and it runs at its maximum."""


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
    """Connector 0's profile ids; connector n's are these plus `PROFILE_IDS_PER_CONNECTOR` * n."""
    verify_after_s: float = 3.0
    """The composite schedule is read back this long after a connection's first lease..."""
    verify_every_s: float = 300.0
    """...and this often after that."""
    recheck_distrusted_s: float = 30.0
    """A charger found not following is checked again this long after, twice as long after
    each further such verdict, up to `verify_every_s` (`recheck_after_s`)."""
    settle_s: float = 15.0
    """How long an EV may take to follow a new limit before its draw counts against it."""
    overdraw_for_s: float = 10.0
    """Drawing over its limit this long after `settle_s`: not following."""
    phase_switch_pause_s: float = 30.0
    """A connector switching between 3 and 1 phase is held at 0 A this long first, unless
    it was at 0 A that long already (KEBA needs 30 s, evcc-io/evcc#25991; a charger switched
    under load keeps its phases, traktore-org/sem-community#804)."""

    def recheck_after_s(self, verdicts: int) -> float:
        """When to check again a charger found not following `verdicts` times in a row:
        its answer will most likely be the same (go-e ignores every profile), and a check
        per lease (every renewal, every new failsafe) cost a GetCompositeSchedule each."""
        doubled: float = self.recheck_distrusted_s * 2.0 ** max(0, verdicts - 1)
        return min(self.verify_every_s, doubled)


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
        self._raised_at = -math.inf
        """When a higher setpoint (or the first, or other phases) went out. Neither a
        renewal nor a decrease counts: the allocator raises a setpoint after a decrease only
        once a reading showed its EV follow or `change_interval_s` passed, and counted here
        too, that decrease held the raise `min_increase_interval_s` more."""

    def due(self, setpoint: Setpoint, now: float) -> bool:
        """Whether `setpoint` must go out now: a first one, other phases, a decrease, or
        when `due_in_s` says 0 (one rule for both: at a float boundary they disagreed)."""
        last = self._last
        if last is None or last.phases != setpoint.phases:
            return True
        if setpoint.current_a - last.current_a < -DECREASE_TOLERANCE_A:
            # Never held back: the allocator counts on it, and a site over its limit is
            # brought back by decreases of a step or two.
            return True
        return self.due_in_s(setpoint, now) == 0.0

    def due_in_s(self, setpoint: Setpoint, now: float) -> float:
        """How long from `now` until `setpoint` (the phases of the last one, not lower)
        comes due by itself: at its lease's renewal, or an increase past the deadband once
        the increase interval is out."""
        assert self._last is not None, "a setpoint that is not due has a last one"
        due = self._sent_at + self._renew_after_s
        if setpoint.current_a - self._last.current_a >= self.settings.deadband_a:
            due = min(due, self._raised_at + self.settings.min_increase_interval_s)
        return max(0.0, due - now)

    @property
    def last(self) -> Setpoint | None:
        """The setpoint last accepted by the charger."""
        return self._last

    @property
    def sent_at(self) -> float:
        """When `last` was last sent (its lease runs from then); -inf before."""
        return self._sent_at

    def sent(self, setpoint: Setpoint, now: float) -> None:
        """Record that `setpoint` was accepted by the charger at `now`."""
        last = self._last
        if (
            last is None
            or last.phases != setpoint.phases
            or setpoint.current_a > last.current_a + DECREASE_TOLERANCE_A
        ):
            self._raised_at = now
        self._last = setpoint
        self._sent_at = now

    def forget(self) -> None:
        """Start over (new connection: the charger may have lost its profiles)."""
        self._last = None
        self._sent_at = self._raised_at = -math.inf


def schedule_limit(setpoint: Setpoint, unit: RateUnit, current_a: float | None = None) -> float:
    """`current_a` (default: the setpoint's) in the charger's unit, rounded down to 0.1
    (1.6 multipleOf 0.1)."""
    value = setpoint.current_a if current_a is None else current_a
    if unit == "W":
        value = setpoint.watts(value)
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
    unit: RateUnit,
    now: datetime,
    valid_to: datetime | None,
    fallback: tuple[float, float] | None = None,
    offline_s: float | None = None,
    elapsed_s: float | None = None,
) -> Payload:
    """A SetChargingProfile request: one Absolute period from `SCHEDULE_BACKDATE` before
    `now`, in force until `valid_to` (or for good); with `fallback` = (seconds after `now`,
    current), a second period at that current from then on; with `offline_s` (2.1 only),
    invalid once the charger has been offline that long (`maxOfflineDuration`). With
    `elapsed_s` (how long ago the charger's transaction started by its count, 0 without
    one) a Relative schedule instead: no startSchedule, the fallback that much later."""
    if offline_s is not None and version is not OcppVersion.V21:
        raise ValueError(f"maxOfflineDuration is OCPP 2.1's, not {version}")
    limits = [(0, schedule_limit(setpoint, unit))]
    if fallback is not None:
        after_s, current_a = fallback
        before_s = SCHEDULE_BACKDATE.total_seconds() if elapsed_s is None else elapsed_s
        limits.append((math.floor(before_s + after_s), schedule_limit(setpoint, unit, current_a)))
    kind = "Absolute" if elapsed_s is None else "Relative"
    schedule: Payload = {
        "chargingRateUnit": unit,
        "chargingSchedulePeriod": [
            {"startPeriod": start, "limit": limit, "numberPhases": setpoint.phases}
            for start, limit in limits
        ],
    }
    if elapsed_s is None:
        schedule["startSchedule"] = _timestamp(now - SCHEDULE_BACKDATE)
    validity: Payload = {} if valid_to is None else {"validTo": _timestamp(valid_to)}
    if version is OcppVersion.V16:
        profile = {
            "chargingProfileId": profile_id,
            "stackLevel": stack_level,
            "chargingProfilePurpose": purpose,
            "chargingProfileKind": kind,
            "chargingSchedule": schedule,
            **validity,
        }
        return {"connectorId": connector_id, "csChargingProfiles": profile}
    if offline_s is not None:
        validity["maxOfflineDuration"] = math.ceil(offline_s)
    profile = {
        "id": profile_id,
        "stackLevel": stack_level,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": kind,
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
        capabilities: Capabilities | None = None,
    ) -> None:
        self.session = session
        self.connector_id = connector_id
        self.settings = settings or LeaseSettings()
        self.capabilities = capabilities or Capabilities()
        """What the charger takes; its owner may update it between calls."""
        self.leases = 1
        """How many leases hubgate keeps on the charger (`lease_mode`); its owner's to set."""
        self.origin: Callable[[], tuple[object, float]] = lambda: (None, 0.0)
        """The connector's transaction (None without one) and how long ago it started by
        the charger's count, at least: a relative lease counts from there; its owner's."""
        spread = zlib.crc32(f"{session.identity}#{connector_id}".encode()) / 2**32
        self.planner = LeasePlanner(self.settings, spread=spread)
        purposes = PURPOSES_V16 if session.version is OcppVersion.V16 else PURPOSES_V2
        # A station-wide maximum exists only for connector 0.
        self._purposes = list(purposes if connector_id == 0 else purposes[1:])
        self._base_installed = False
        self._base_limit: float | None = None
        """The failsafe limit the base profile holds, in the charger's unit (LEVELS)."""
        self._relative = True
        """False once the charger refused a Relative profile."""
        self._sent_origin: object = None
        self._mode = lease_mode(self.capabilities, self.leases)
        self._lease_end: datetime | None = None
        """When the current lease ends, on the charger's clock."""
        self._calls = trio.Lock()
        """One profile exchange at a time: a verification never reads a half-sent lease."""
        offset = PROFILE_IDS_PER_CONNECTOR * connector_id
        self.base_profile_id = self.settings.base_profile_id + offset
        self.limit_profile_id = self.settings.limit_profile_id + offset
        """This connector's profile ids (its own: see `PROFILE_IDS_PER_CONNECTOR`)."""

    @property
    def purpose(self) -> str:
        """The purpose in use (the preferred one until a charger rejects it)."""
        return "TxDefaultProfile" if self._mode is LeaseMode.RELATIVE else self._purposes[0]

    @property
    def mode(self) -> LeaseMode | None:
        """The lease's shape now (None: the charger can hold no lease)."""
        return self._mode

    async def apply(self, setpoint: Setpoint) -> bool:
        """Send `setpoint` if the planner says so; True when a profile went out."""
        async with self._calls:
            await self._follow_capabilities()
            return await self._apply(setpoint)

    async def renew(self) -> bool:
        """Send the last accepted setpoint again if its renewal is due; True when a profile
        went out. It is read once the call before has its answer: a renewal that waited
        behind a new limit renews that one (the one before would take it back)."""
        async with self._calls:
            last = self.planner.last  # (a change of the lease's shape forgets it)
            await self._follow_capabilities()
            return last is not None and await self._apply(last)

    def quiet(self, setpoint: Setpoint) -> bool:
        """Whether `apply(setpoint)` would send nothing now, known at once: no exchange in
        progress, the lease's shape the one its capabilities ask for and nothing due."""
        mode = lease_mode(self.capabilities, self.leases, relative=self._relative)
        return (
            not self._calls.locked()
            and mode is self._mode
            and not self._due(setpoint, trio.current_time())
        )

    def quiet_for_s(self, setpoint: Setpoint) -> float:
        """How long from now `apply(setpoint)` would still send nothing, by what is known
        now (`LeasePlanner.due_in_s`); 0 when it would send now (`quiet`)."""
        if not self.quiet(setpoint):
            return 0.0
        return self.planner.due_in_s(setpoint, trio.current_time())

    def _due(self, setpoint: Setpoint, now: float) -> bool:
        """Whether `setpoint` must go out now (a relative lease counts from its
        transaction's start: a new transaction needs a new one)."""
        restarted = self._mode is LeaseMode.RELATIVE and self.origin()[0] != self._sent_origin
        return not self._base_installed or self.planner.due(setpoint, now) or restarted

    async def _apply(self, setpoint: Setpoint) -> bool:
        now = trio.current_time()
        if not self._due(setpoint, now):
            return False
        wall = on_charger_clock(datetime.now(UTC), self.capabilities)
        while True:
            try:
                await self._send_lease(setpoint, wall)
            except _RejectedError as rejected:
                await self._next_shape(rejected)
                continue
            self.planner.sent(setpoint, now)
            self._lease_end = wall + timedelta(seconds=self.settings.lease_s)
            return True

    async def install_base(self, failsafe: Setpoint | None = None) -> None:
        """Install the permanent failsafe profile now (it also goes out with the first limit):
        `failsafe` in the charger's terms (its voltage, the phases its EV draws on, a DC
        charger's conversion), else the failsafe current on three phases."""
        async with self._calls:
            await self._follow_capabilities()
            wall = on_charger_clock(datetime.now(UTC), self.capabilities)
            template = failsafe or Setpoint(self.settings.failsafe_current_a)
            while True:
                try:
                    await self._ensure_base(template, wall)
                except _RejectedError as rejected:
                    await self._next_shape(rejected)
                    continue
                return

    async def _follow_capabilities(self) -> None:
        """Change the lease's shape when what is known of the charger asks for another."""
        mode = lease_mode(self.capabilities, self.leases, relative=self._relative)
        if mode is self._mode:
            return
        LOG.info("%s: lease %s -> %s", self.session.identity, self._mode, mode)
        if self._mode is LeaseMode.LEVELS and self._base_installed:
            await self._clear(self.limit_profile_id)
        self._mode = mode
        self._base_installed = False
        self.planner.forget()

    async def _clear(self, profile_id: int) -> None:
        """Remove one of our profiles (a charger that keeps it past validTo)."""
        key = "id" if self.session.version is OcppVersion.V16 else "chargingProfileId"
        try:
            await self.session.call("ClearChargingProfile", {key: profile_id})
        except OcppCallError as error:
            LOG.warning("%s: profile %d not cleared: %s", self.session.identity, profile_id, error)

    async def _send_lease(self, setpoint: Setpoint, wall: datetime) -> None:
        s = self.settings
        if self._mode is LeaseMode.LEVELS:
            await self._ensure_base(setpoint, wall)
            valid_to = wall + timedelta(seconds=s.lease_s)
            offline = s.lease_s if self.session.version is OcppVersion.V21 else None
            await self._send(self.limit_profile_id, 1, setpoint, wall, valid_to, offline_s=offline)
        elif self._mode is LeaseMode.SCHEDULE:
            fallback = (s.lease_s, s.failsafe_current_a)
            await self._send(self.base_profile_id, 0, setpoint, wall, None, fallback)
            self._base_installed = True
        elif self._mode is LeaseMode.RELATIVE:
            origin, elapsed = self.origin()
            fallback = (s.lease_s, s.failsafe_current_a)
            await self._send(
                self.base_profile_id, 0, setpoint, wall, None, fallback, elapsed_s=elapsed
            )
            self._sent_origin, self._base_installed = origin, True
        else:  # no lease possible: the limit itself, kept until replaced
            await self._send(self.base_profile_id, 0, setpoint, wall, None)
            self._base_installed = True

    async def _ensure_base(self, template: Setpoint, wall: datetime) -> None:
        """The base profile at the failsafe current in `template`'s terms: sent when not
        installed, or when that limit in the charger's unit moved beyond a charger's rounding
        from the one installed (a watt charger turns watts back into amperes with the
        phases its EV draws on: 4,140 W is 18 A on one phase; a DC charger's watts are DC)."""
        failsafe = replace(template, current_a=self.settings.failsafe_current_a)
        limit = schedule_limit(failsafe, self.capabilities.rate_unit)
        installed = self._base_limit
        if (
            self._base_installed
            and installed is not None
            and abs(limit - installed) <= installed * VERIFY_TOLERANCE
        ):
            return
        relative = 0.0 if self._mode is LeaseMode.RELATIVE else None  # (in force at once)
        await self._send(self.base_profile_id, 0, failsafe, wall, None, elapsed_s=relative)
        self._base_installed, self._base_limit = True, limit

    async def _next_shape(self, rejected: _RejectedError) -> None:
        """Move on from a relative lease the charger refused, else to the next purpose."""
        if self._mode is not LeaseMode.RELATIVE:
            self._next_purpose(rejected)
            return
        LOG.info("%s: %s rejected; a lease on its clock instead", self.session.identity, rejected)
        self._relative = False
        await self._follow_capabilities()

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
        fallback: tuple[float, float] | None = None,
        *,
        offline_s: float | None = None,
        elapsed_s: float | None = None,
    ) -> None:
        payload = set_charging_profile(
            self.session.version,
            connector_id=self.connector_id,
            profile_id=profile_id,
            stack_level=self.settings.base_stack_level + level_above_base,
            purpose=self.purpose,
            setpoint=setpoint,
            unit=self.capabilities.rate_unit,
            now=now,
            valid_to=valid_to,
            fallback=fallback,
            offline_s=offline_s,
            elapsed_s=elapsed_s,
        )
        try:
            result = await self.session.call("SetChargingProfile", payload)
        except OcppCallError as exc:
            raise _RejectedError(f"{self.purpose} ({exc.code})") from None
        if result["status"] != "Accepted":
            raise _RejectedError(self.purpose)

    async def verify(self) -> Verification:
        """Whether the charger's composite schedule honours the last setpoint sent, and
        falls to the failsafe when the lease ends (`judge`)."""
        async with self._calls:
            expected, lease_end = self.planner.last, self._lease_end
            if expected is None or lease_end is None:
                return Verification(None, None, "nothing sent yet")
            horizon = self.settings.lease_s + 30
            try:
                schedule = await self.composite_schedule(round(horizon))
            except OcppCallError as error:
                return Verification(None, None, f"GetCompositeSchedule: {error.code}")
            if schedule is None:
                return Verification(None, None, "GetCompositeSchedule rejected")
            if self._mode is LeaseMode.RELATIVE and schedule.start is not None:
                # its end by the charger's own count, whatever its clock says
                left_s = self.planner.sent_at + self.settings.lease_s - trio.current_time()
                lease_end = schedule.start + timedelta(seconds=left_s)
            verification = judge(
                schedule,
                schedule_limit(expected, schedule.unit),
                schedule_limit(expected, schedule.unit, self.settings.failsafe_current_a),
                lease_end,
            )
            if verification.following is False:
                LOG.warning("%s: %s", self.session.identity, verification.evidence)
            return verification

    async def composite_schedule(self, duration_s: int = 60) -> CompositeSchedule | None:
        """What the charger reports it applies from now for `duration_s` (None: rejected)."""
        if self.session.version is OcppVersion.V16:
            request: Payload = {"connectorId": self.connector_id, "duration": duration_s}
        else:
            request = {"evseId": self.connector_id, "duration": duration_s}
        unit = self.capabilities.rate_unit
        request["chargingRateUnit"] = unit
        return parse_composite(await self.session.call("GetCompositeSchedule", request), unit)

    async def composite_limit(self, duration_s: int = 60) -> float | None:
        """The limit the charger reports it applies now (GetCompositeSchedule), or None."""
        schedule = await self.composite_schedule(duration_s)
        return None if schedule is None else schedule.limit_at(0.0)


class _RejectedError(Exception):
    """A charger answered SetChargingProfile with a status other than Accepted."""


def lease_for_session(
    lease: ProfileLease | None,
    session: OcppSession | None,
    *,
    connector_id: int = 0,
    settings: LeaseSettings,
    capabilities: Capabilities | None,
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
        capabilities: Callable[[str], Capabilities] | None = None,
    ) -> None:
        """`capabilities`: what each identity takes, asked before every send (default:
        amperes, levels)."""
        self.registry = registry
        self.settings = settings or LeaseSettings()
        self.capabilities = capabilities or (lambda identity: Capabilities())
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
            capabilities=None,
        )
        if lease is not None:
            lease.capabilities = self.capabilities(identity)
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
