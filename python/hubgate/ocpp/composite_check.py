"""What a charger reports it applies (GetCompositeSchedule), and what that says of a lease.

`parse_composite` reads an answer of 1.6 or 2.x; `judge` compares it with the limit sent:
whether the charger applies it (or more: not following) and whether it falls to the
failsafe when the lease ends (or keeps profiles past their validTo).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from hubgate.ocpp.capabilities import CLOCK_TOLERANCE_S, RateUnit
from hubgate.ocpp.meter_values import parse_timestamp
from hubgate.ocpp.rpc import Payload

LAPSE_MARGIN_S = 2.0
"""A lease is checked to have lapsed this long after its end (composite schedule)."""


@dataclass(frozen=True)
class CompositeSchedule:
    """What a charger reports it will apply (GetCompositeSchedule)."""

    start: datetime | None
    """Its `scheduleStart` (its clock), None when absent."""
    unit: RateUnit
    periods: tuple[tuple[float, float], ...]
    """(seconds after `start`, limit), in order."""
    duration_s: float | None

    def limit_at(self, offset_s: float) -> float | None:
        """The limit `offset_s` after the start; None beyond the schedule's duration."""
        if self.duration_s is not None and offset_s >= self.duration_s:
            return None
        current = [limit for start, limit in self.periods if start <= offset_s]
        return current[-1] if current else None


def parse_composite(result: Payload, requested: RateUnit) -> CompositeSchedule | None:
    """A GetCompositeSchedule answer (1.6 or 2.x); None when Rejected or without periods."""
    if result.get("status") != "Accepted":
        return None
    schedule = result.get("chargingSchedule") or result.get("schedule") or {}
    periods = tuple(
        sorted(
            (float(p["startPeriod"]), float(p["limit"]))
            for p in schedule.get("chargingSchedulePeriod", [])
            if "limit" in p
        )
    )
    if not periods:
        return None
    text = (
        result.get("scheduleStart")
        or schedule.get("scheduleStart")
        or schedule.get("startSchedule")
    )
    try:
        start = parse_timestamp(text) if isinstance(text, str) else None
    except ValueError:
        start = None
    unit = schedule.get("chargingRateUnit", requested)
    duration = schedule.get("duration")
    return CompositeSchedule(
        start,
        "W" if unit == "W" else "A",
        periods,
        None if duration is None else float(duration),
    )


@dataclass(frozen=True)
class Verification:
    """What a composite schedule said of the last lease.

    `following`: the limit applied now is at most the one sent (None: could not tell);
    `lapses`: the schedule falls to the failsafe when the lease ends (None: not shown);
    `late`: read after the lease had ended, it could not see the limit in force."""

    following: bool | None
    lapses: bool | None
    evidence: str
    late: bool = False


VERIFY_TOLERANCE = 0.02
"""A reported limit may exceed the one sent by this share (rounding in the charger)."""


def _close(reported: float, sent: float) -> bool:
    """Whether a reported limit is the one sent, within the charger's rounding."""
    return abs(reported - sent) <= sent * VERIFY_TOLERANCE + 0.05


def judge(
    schedule: CompositeSchedule, limit: float, failsafe: float, lease_end: datetime
) -> Verification:
    """What a composite schedule says of a lease of `limit` ending at `lease_end` (the
    charger's clock) with `failsafe` after it (both in the schedule's unit, as sent).

    Read while the lease runs: a limit now above the one sent is not following; the limit
    just after `lease_end` shows whether it lapses. Read after it ended (its renewal came
    late: a loaded gateway, a slow link), the limit now is that evidence: the failsafe is a
    lapse, not a charger ignoring its limit; still the limit sent, it keeps profiles past
    their validTo. Within `CLOCK_TOLERANCE_S` of its end (a clock that close to ours is
    not corrected) the failsafe counts as a lapse too. A schedule without its start (the
    charger's clock) shows no lapse."""
    unit = schedule.unit
    applied = schedule.limit_at(0.0)
    assert applied is not None, "a parsed schedule has a first period"
    visible = not _close(limit, failsafe)  # only a setpoint other than the failsafe shows it
    start = schedule.start
    since_end = None if start is None else (start - lease_end).total_seconds()
    lapsed = f"applies {applied:g} {unit}: the lease had lapsed"
    ending = since_end is not None and since_end >= -CLOCK_TOLERANCE_S
    if ending and visible and _close(applied, failsafe):
        return Verification(None, True, lapsed, late=True)
    if since_end is not None and since_end >= LAPSE_MARGIN_S:
        if visible and _close(applied, limit):
            evidence = f"keeps {applied:g} {unit} after the lease ends ({limit:g} set)"
            return Verification(True, False, evidence)
        most = max(limit, failsafe)
        if applied > most * (1 + VERIFY_TOLERANCE) + 0.05:
            evidence = f"applies {applied:g} {unit} where at most {most:g} {unit} holds"
            return Verification(False, None, evidence, late=True)
        return Verification(None, None, lapsed, late=True)
    if applied > limit * (1 + VERIFY_TOLERANCE) + 0.05:
        return Verification(
            False, None, f"applies {applied:g} {unit} where {limit:g} {unit} was set"
        )
    evidence = f"applies {applied:g} {unit} ({limit:g} set)"
    lapses: bool | None = None
    if start is not None and visible:
        later = schedule.limit_at((lease_end - start).total_seconds() + LAPSE_MARGIN_S)
        if later is not None and _close(later, failsafe):
            lapses = True
        elif later is not None and _close(later, limit):
            lapses = False
            evidence += f"; keeps {later:g} {unit} after the lease ends"
    return Verification(True, lapses, evidence)
