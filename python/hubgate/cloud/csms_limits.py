"""Charging profiles from the CSMS become limit leases for the allocator.

hubgate owns the chargers' charging profiles (its leased setpoints). A profile
the CSMS sends is therefore not passed on: the period of its schedule that is
in force now becomes a `LimitSource.CSMS` lease in the `LimitBook`, on the
connector it names (`"charger-id#connector"`, `#0` = the whole charger) or on
the site when it is addressed to the gateway's own identity. The lease lasts
until the period ends (or the profile's validity or duration does); the next
period then replaces it, so a multi-period schedule is followed step by step.

One CSMS profile per target is kept (the newest replaces the older): the
allocator sees the CSMS as one source among the others, most restrictive wins.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

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


class CsmsLimits:
    """Follows the CSMS's profiles in a `LimitBook`; `open` it in a nursery first."""

    def __init__(self, book: LimitBook) -> None:
        self.book = book
        self._followers: dict[str, trio.CancelScope] = {}
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own the tasks that follow each profile's periods until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    def set_profile(self, target: str, profile: dict[str, Any], origin: str) -> None:
        """A SetChargingProfile for `target` (replaces the CSMS's previous one there).

        Raises ValueError for a profile that sets no valid limit (e.g. a negative one),
        leaving the previous profile in place.
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
        self.clear(target, origin)
        if self._nursery is None:
            raise RuntimeError("CsmsLimits.run is not running")
        scope = trio.CancelScope()
        self._followers[target] = scope
        self._nursery.start_soon(self._follow, target, profile, origin, scope)

    def clear(self, target: str, origin: str) -> bool:
        """A ClearChargingProfile for `target`: its CSMS lease ends; False when there was none."""
        scope = self._followers.pop(target, None)
        if scope is not None:
            scope.cancel()
        cleared = self.book.clear(target, LimitSource.CSMS, now=trio.current_time(), origin=origin)
        return cleared or scope is not None

    def targets(self) -> list[str]:
        """Targets with a CSMS profile being followed."""
        return sorted(self._followers)

    async def _follow(
        self, target: str, profile: dict[str, Any], origin: str, scope: trio.CancelScope
    ) -> None:
        received = datetime.now(UTC)
        with scope:
            while True:
                wall = datetime.now(UTC)
                step = profile_step(profile, received, wall)
                lease_s = None if step.until is None else (step.until - wall).total_seconds()
                now = trio.current_time()
                if step.limit is None or (lease_s is not None and lease_s <= 0):
                    self.book.clear(target, LimitSource.CSMS, now=now, origin=origin)
                else:
                    self.book.set(
                        target,
                        LimitSource.CSMS,
                        step.limit,
                        now=now,
                        lease_s=lease_s,
                        origin=origin,
                    )
                    LOG.info("%s: CSMS limit %s until %s", target, step.limit, step.until)
                if lease_s is None:
                    break
                await trio.sleep(max(lease_s, 0.001))
            await trio.sleep_forever()  # the profile stays on record until cleared or replaced
