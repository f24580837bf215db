"""Charging profiles from the CSMS become limit leases for the allocator.

hubgate owns the chargers' charging profiles (its leased setpoints). A profile
the CSMS sends is therefore not passed on: the period of its schedule that is
in force now becomes a `LimitSource.CSMS` lease in the `LimitBook`, on the
connector it names (`"charger-id#connector"`, `#0` = the whole charger) or on
the site when it is addressed to the gateway's own identity. The lease lasts
until the period ends (or the profile's validity or duration does); the next
period then replaces it, so a multi-period schedule is followed step by step.

A target keeps every CSMS profile it was given; a new one replaces the one with
its id or with its purpose and stack level (OCPP 1.6 §5.16.3, 2.0.1 K01.FR.05).
The lease is the most restrictive of their limits in force: a CSMS profile can
lower what hubgate allocates, never raise it (the allocator takes the CSMS as
one source among the others, most restrictive wins). A TxProfile ends with its
transaction (`clear(..., purpose=TX_PROFILE)`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import trio

from hubgate.control.limits import Limit, LimitBook, LimitSource
from hubgate.ocpp.meter_values import parse_timestamp
from hubgate.ocpp.versions import OcppVersion

LOG = logging.getLogger("hubgate.cloud")

_RECURRENCE = {"Daily": timedelta(days=1), "Weekly": timedelta(weeks=1)}


@dataclass(frozen=True, slots=True)
class ProfileStep:
    """What a profile asks for from `now` on: a limit (None: nothing) until `until` (None: for good)."""

    limit: Limit | None
    until: datetime | None


def profile_of(version: OcppVersion, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """(connector or EVSE id, the profile) of a SetChargingProfile request."""
    if version is OcppVersion.V16:
        return int(request["connectorId"]), request["csChargingProfiles"]
    return int(request["evseId"]), request["chargingProfile"]


def _period_limit(unit: str, period: dict[str, Any]) -> Limit | None:
    value = period.get("limit")
    if value is None:  # OCPP 2.1 periods may carry only setpoints
        return None
    if unit == "W":
        return Limit(power_kw=float(value) / 1000)
    amps = float(value)
    return Limit(phase_a=(amps, amps, amps))


def profile_step(profile: dict[str, Any], received: datetime, now: datetime) -> ProfileStep:
    """The limit a profile sets at `now` and when that changes.

    Relative schedules start when the profile was `received`; recurring ones
    (Daily, Weekly) repeat from their start. Outside validFrom/validTo and the
    schedule's duration the profile sets nothing.
    """
    schedule = profile["chargingSchedule"]
    schedule = schedule[0] if isinstance(schedule, list) else schedule
    valid_from = _time(profile.get("validFrom"))
    valid_to = _time(profile.get("validTo"))
    if valid_from is not None and now < valid_from:
        return ProfileStep(None, valid_from)
    if valid_to is not None and now >= valid_to:
        return ProfileStep(None, None)
    start = _time(schedule.get("startSchedule"))
    if start is None:
        start = received if profile.get("chargingProfileKind") == "Relative" else valid_from
    start = start or received
    cycle = _RECURRENCE.get(profile.get("recurrencyKind", ""))
    if cycle is not None and now >= start:
        start += cycle * ((now - start) // cycle)
    periods = sorted(schedule["chargingSchedulePeriod"], key=lambda p: p["startPeriod"])
    ends = [start + timedelta(seconds=p["startPeriod"]) for p in periods[1:]]
    if "duration" in schedule:
        ends.append(start + timedelta(seconds=schedule["duration"]))
    elif cycle is not None:
        ends.append(start + cycle)
    limit: Limit | None = None
    until: datetime | None = start + timedelta(seconds=periods[0]["startPeriod"])
    if until is not None and now >= until:
        limit, until = None, None
        for period, end in zip(periods, [*ends, None], strict=False):
            if now >= start + timedelta(seconds=period["startPeriod"]):
                limit = _period_limit(schedule["chargingRateUnit"], period)
                until = end
        if "duration" in schedule and now >= start + timedelta(seconds=schedule["duration"]):
            limit, until = None, (start + cycle if cycle is not None else None)
    if valid_to is not None and (until is None or until > valid_to):
        until = valid_to
    return ProfileStep(limit, until)


def _time(value: object) -> datetime | None:
    return parse_timestamp(value) if isinstance(value, str) else None


TX_PROFILE = "TxProfile"
"""The purpose of a profile that lasts as long as its transaction."""


def _profile_id(profile: dict[str, Any]) -> object:
    return profile.get("chargingProfileId", profile.get("id"))


def _purpose_and_level(profile: dict[str, Any]) -> tuple[object, object]:
    return profile.get("chargingProfilePurpose"), profile.get("stackLevel")


def _replaces(new: dict[str, Any], old: dict[str, Any]) -> bool:
    """Whether a new profile takes an older one's place: the same id, or the same purpose
    and stack level."""
    same_id = _profile_id(new) is not None and _profile_id(new) == _profile_id(old)
    return same_id or _purpose_and_level(new) == _purpose_and_level(old)


@dataclass(frozen=True, slots=True)
class Followed:
    """A CSMS profile on a target, when it came and from whom."""

    profile: dict[str, Any]
    received: datetime
    origin: str


class ProfileKeeper(Protocol):
    """Where the profiles outlive this gateway's leadership: with a `[cluster]`, the next
    leader's `CsmsLimits` starts with them (`hubgate.cluster.operator_replica`)."""

    def kept(self) -> Mapping[str, Sequence[Followed]]:
        """Per target, the profiles followed when they were last kept."""

    def keep(self, target: str, profiles: Sequence[Followed]) -> None:
        """`target`'s profiles now (none: it has no CSMS profile any more)."""


class CsmsLimits:
    """Follows the CSMS's profiles in a `LimitBook`; `open` it in a nursery first."""

    def __init__(self, book: LimitBook, keeper: ProfileKeeper | None = None) -> None:
        self.book = book
        self.keeper = keeper
        self._profiles: dict[str, list[Followed]] = {}
        self._next_s: dict[str, float | None] = {}
        self._pokes: dict[str, trio.Event] = {}
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own the tasks that follow each target's periods until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            if self.keeper is not None:  # what the CSMS gave the gateway that led before
                for target, followed in self.keeper.kept().items():
                    self._profiles[target] = list(followed)
                    self._changed(target)
            task_status.started()
            await trio.sleep_forever()

    def set_profile(self, target: str, profile: dict[str, Any], origin: str) -> None:
        """A SetChargingProfile for `target` (replacing the one of its id or of its purpose
        and stack level there).

        Raises ValueError for a profile that sets no valid limit (e.g. a negative one),
        leaving the previous profiles in place.
        """
        now = datetime.now(UTC)
        try:
            profile_step(profile, now, now)
            schedule = profile["chargingSchedule"]
            schedule = schedule[0] if isinstance(schedule, list) else schedule
            for period in schedule["chargingSchedulePeriod"]:
                _period_limit(schedule["chargingRateUnit"], period)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise ValueError(f"{target}: unusable charging profile: {exc!r}") from None
        if self._nursery is None:
            raise RuntimeError("CsmsLimits.run is not running")
        kept = [f for f in self._profiles.get(target, []) if not _replaces(profile, f.profile)]
        self._profiles[target] = [*kept, Followed(profile, now, origin)]
        self._changed(target)

    def clear(
        self,
        target: str,
        origin: str,
        *,
        purpose: str | None = None,
        stack_level: int | None = None,
        profile_id: int | None = None,
    ) -> bool:
        """A ClearChargingProfile for `target`: the profiles matching every given criterion
        end (all of them when none is given); False when there was none."""

        def matches(profile: dict[str, Any]) -> bool:
            return (
                (purpose is None or profile.get("chargingProfilePurpose") == purpose)
                and (stack_level is None or profile.get("stackLevel") == stack_level)
                and (profile_id is None or _profile_id(profile) == profile_id)
            )

        followed = self._profiles.get(target, [])
        kept = [f for f in followed if not matches(f.profile)]
        if len(kept) == len(followed):
            return False
        self._profiles[target] = kept
        self._changed(target, origin)
        return True

    def targets(self) -> list[str]:
        """Targets with a CSMS profile being followed."""
        return sorted(t for t, followed in self._profiles.items() if followed)

    def _changed(self, target: str, origin: str | None = None) -> None:
        """Publish the target's lease now and have its follower wait for the next change."""
        self._publish(target, origin)
        if self.keeper is not None:
            self.keeper.keep(target, self._profiles.get(target, []))
        poke = self._pokes.get(target)
        if poke is not None:
            poke.set()
        elif self._profiles.get(target):
            assert self._nursery is not None
            self._pokes[target] = trio.Event()
            self._nursery.start_soon(self._follow, target)

    def _publish(self, target: str, origin: str | None = None) -> None:
        """Set the target's lease to what its profiles allow now (clear it when nothing)."""
        wall = datetime.now(UTC)
        limit: Limit | None = None
        until: datetime | None = None
        followed = []
        for item in self._profiles.get(target, []):
            step = profile_step(item.profile, item.received, wall)
            if step.limit is None and step.until is None:
                continue  # over for good
            followed.append(item)
            if step.limit is not None:
                limit = step.limit if limit is None else limit.tighten(step.limit)
            if step.until is not None and (until is None or step.until < until):
                until = step.until
        self._profiles[target] = followed
        lease_s = None if until is None else max((until - wall).total_seconds(), 0.001)
        self._next_s[target] = lease_s
        now = trio.current_time()
        source = LimitSource.CSMS
        if limit is None:
            by = origin or (followed[-1].origin if followed else "csms")
            self.book.clear(target, source, now=now, origin=by)
            return
        self.book.set(target, source, limit, now=now, lease_s=lease_s, origin=followed[-1].origin)
        LOG.info("%s: CSMS limit %s until %s", target, limit, until)

    async def _follow(self, target: str) -> None:
        """Re-publish the target's lease whenever a period changes, while it has profiles."""
        try:
            while self._profiles.get(target):
                delay = self._next_s.get(target)
                poke = self._pokes[target]
                with trio.move_on_after(math.inf if delay is None else delay) as waited:
                    await poke.wait()
                if waited.cancelled_caught:
                    self._publish(target)
                else:
                    self._pokes[target] = trio.Event()
        finally:
            del self._pokes[target]
