"""What a simulated OCPP station takes and applies of charging profiles (1.6 and 2.0.1), sans-IO.

A profile the specifications say a station refuses is refused (`refusal`): the rules and
where they come from are in its docstring. Stored, a profile replaces one with its id, or
with its connector, purpose and stack level (1.6 §5.16.3; EVerest libocpp keeps one profile
per connector and stack level of each purpose, lib/ocpp/v16/smart_charging.cpp @4e07202).

Per purpose the valid profile (validFrom <= now < validTo, schedule running) of
the highest stack level gives its current period's limit; a TxProfile replaces
the TxDefaultProfile during a transaction; the station maximum caps both. When
a profile's validTo passes, the next stack level below applies again: that is
how a gateway's device-side lease falls back to its base profile; the station
then discards it (`unexpired`), so a clock set back later does not revive it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

_PURPOSES = {
    "ChargePointMaxProfile": "max",
    "ChargingStationMaxProfile": "max",
    "TxDefaultProfile": "default",
    "TxProfile": "tx",
}
_RECURRENCE_S = {"Daily": 86_400.0, "Weekly": 604_800.0}


@dataclass(frozen=True)
class LimitProfile:
    """One charging profile, normalised over the two versions."""

    id: int
    target: int
    """Connector (1.6) or EVSE (2.0.1) id; 0 for the whole station."""
    stack_level: int
    purpose: str
    """max, default or tx."""
    kind: str
    recurrency: str | None
    valid_from: datetime | None
    valid_to: datetime | None
    start: datetime | None
    duration_s: float | None
    unit: str
    periods: tuple[tuple[float, float, int | None], ...]
    """(start offset s, limit, number of phases) as given: in order once taken (`refusal`)."""
    received: datetime


def _time(text: object) -> datetime | None:
    if text is None:
        return None
    if not isinstance(text, str):
        raise ValueError(f"expected a date-time text, got {text!r}")
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def parse(data: Mapping[str, Any], target: int, received: datetime) -> LimitProfile:
    """A profile as the `ocpp` package hands it (snake_case keys); ValueError when malformed."""
    try:
        purpose = _PURPOSES[data["charging_profile_purpose"]]
        schedule = data["charging_schedule"]
        if isinstance(schedule, list):  # 2.0.1: one to three schedules; the first applies
            schedule = schedule[0]
        periods = tuple(
            (float(p["start_period"]), float(p["limit"]), p.get("number_phases"))
            for p in schedule["charging_schedule_period"]
        )
        duration = schedule.get("duration")
        return LimitProfile(
            id=int(data.get("charging_profile_id", data.get("id", 0))),
            target=target,
            stack_level=int(data["stack_level"]),
            purpose=purpose,
            kind=str(data["charging_profile_kind"]),
            recurrency=data.get("recurrency_kind"),
            valid_from=_time(data.get("valid_from")),
            valid_to=_time(data.get("valid_to")),
            start=_time(schedule.get("start_schedule")),
            duration_s=None if duration is None else float(duration),
            unit=str(schedule["charging_rate_unit"]),
            periods=periods,
            received=received,
        )
    except (KeyError, TypeError, IndexError) as error:
        raise ValueError(f"malformed charging profile: {error!r}") from error


def refusal(
    profile: LimitProfile,
    *,
    transaction: bool,
    stored: list[LimitProfile],
    v16: bool = False,
    max_profiles: int | None = None,
    max_periods: int | None = None,
) -> str | None:
    """Why a station refuses `profile` (None: it takes it), by the book:

    - the station maximum only on connector/EVSE 0, never Relative (1.6 §3.13.1; 2.0.1
      K01.FR.03 and K01.FR.38);
    - a TxProfile only on a connector with a transaction (1.6 §3.13.1 "SHALL discard it";
      K01.FR.09, K01.FR.16);
    - an Absolute or Recurring schedule needs its startSchedule (K01.FR.40; libocpp's 1.6
      too), a 2.0.1 Relative one has none (K01.FR.41);
    - periods start at 0 and rise (1.6 §5.16 notes; K01.FR.31, K01.FR.35), limits are not
      negative, phases 1 to 3; no more periods than ChargingScheduleMaxPeriods and no more
      profiles than MaxChargingProfilesInstalled (1.6 §3.13.5 keys; 2.0.1 PeriodsPerSchedule,
      Entries).

    The 2.0.1 requirement numbers are as EVerest libocpp cites them (doc/ocpp_201_smart_
    charging.md @bba1601); its 1.6 validate_profile refuses the same (smart_charging.cpp)."""
    if profile.purpose == "max" and (profile.target != 0 or profile.kind == "Relative"):
        return "a station maximum is for the whole station and not Relative"
    if profile.purpose == "tx" and (profile.target == 0 or not transaction):
        return "a TxProfile needs a connector with a transaction"
    if profile.kind in ("Absolute", "Recurring") and profile.start is None:
        return f"an {profile.kind} schedule needs its startSchedule"
    if profile.kind == "Relative" and profile.start is not None and not v16:
        return "a Relative schedule has no startSchedule"
    starts = [start for start, _, _ in profile.periods]
    if not starts or starts[0] != 0 or starts != sorted(set(starts)):
        return "periods start at 0 and rise"
    if any(limit < 0 or phases not in (None, 1, 2, 3) for _, limit, phases in profile.periods):
        return "a negative limit or a number of phases other than 1 to 3"
    if max_periods is not None and len(starts) > max_periods:
        return f"more than {max_periods} periods"
    replaced = replace(stored, profile)
    if max_profiles is not None and len(replaced) > max_profiles:
        return f"more than {max_profiles} profiles installed"
    return None


def _offset(profile: LimitProfile, now: datetime, tx_start: datetime | None) -> float | None:
    """Seconds into the schedule at `now`, None when it is not running."""
    if profile.kind == "Relative":
        base = tx_start or profile.received
    else:
        base = profile.start or profile.valid_from or profile.received
    offset = (now - base).total_seconds()
    if profile.kind == "Recurring":
        offset %= _RECURRENCE_S.get(profile.recurrency or "Daily", 86_400.0)
    if offset < 0 or (profile.duration_s is not None and offset >= profile.duration_s):
        return None
    return offset


def _period_limit(
    profile: LimitProfile,
    now: datetime,
    tx_start: datetime | None,
    voltage: float,
    phases: int,
    ignore_valid_to: bool = False,
    dc_w_per_a: float | None = None,
) -> tuple[float, int | None] | None:
    """The profile's limit per phase in A at `now` and its period's number of phases, None
    when it does not apply (a W limit of a DC station is DC power: `dc_w_per_a`)."""
    if profile.valid_from is not None and now < profile.valid_from:
        return None
    if profile.valid_to is not None and now >= profile.valid_to and not ignore_valid_to:
        return None
    offset = _offset(profile, now, tx_start)
    if offset is None:
        return None
    current = [p for p in profile.periods if p[0] <= offset]
    if not current:
        return None
    _, limit, number_phases = current[-1]
    if profile.unit == "W" and dc_w_per_a is not None:
        return limit / dc_w_per_a, number_phases
    if profile.unit == "W":
        return limit / (voltage * (number_phases or phases)), number_phases
    return limit, number_phases


def applied(
    profiles: Iterable[LimitProfile],
    target: int,
    now: datetime,
    *,
    tx_start: datetime | None,
    voltage: float,
    phases: int,
    ignore_valid_to: bool = False,
    dc_w_per_a: float | None = None,
) -> tuple[float, int | None] | None:
    """The limit per phase (A) the station applies at `target` now, with the number of
    phases its period asks for; None: no profile limits it. `ignore_valid_to`: a station
    that keeps applying profiles after their validTo; `dc_w_per_a`: a DC station's DC
    power per ampere on each AC phase."""
    best: dict[str, tuple[int, tuple[float, int | None]]] = {}
    for profile in profiles:
        if profile.target not in (0, target):
            continue
        if profile.purpose == "tx" and tx_start is None:
            continue
        period = _period_limit(profile, now, tx_start, voltage, phases, ignore_valid_to, dc_w_per_a)
        if period is None:
            continue
        known = best.get(profile.purpose)
        if known is None or profile.stack_level > known[0]:
            best[profile.purpose] = (profile.stack_level, period)
    chosen = best.get("tx") or best.get("default")
    periods = [entry[1] for entry in (chosen, best.get("max")) if entry is not None]
    return min(periods, key=lambda period: period[0]) if periods else None


def limit_at(
    profiles: Iterable[LimitProfile],
    target: int,
    now: datetime,
    *,
    tx_start: datetime | None,
    voltage: float,
    phases: int,
    ignore_valid_to: bool = False,
    dc_w_per_a: float | None = None,
) -> float | None:
    """The limit per phase (A) the station applies at `target` now (`applied`)."""
    period = applied(
        profiles,
        target,
        now,
        tx_start=tx_start,
        voltage=voltage,
        phases=phases,
        ignore_valid_to=ignore_valid_to,
        dc_w_per_a=dc_w_per_a,
    )
    return None if period is None else period[0]


def changes(profiles: Iterable[LimitProfile], start: datetime, duration_s: float) -> list[float]:
    """The seconds after `start`, within `duration_s`, at which a profile may change what
    applies (validity bounds, period starts of absolute schedules), with 0 first."""
    moments = {0.0}
    for profile in profiles:
        edges = [profile.valid_from, profile.valid_to]
        base = profile.start or profile.valid_from
        if base is not None and profile.kind == "Absolute":
            edges += [base + timedelta(seconds=offset) for offset, _, _ in profile.periods]
            if profile.duration_s is not None:
                edges.append(base + timedelta(seconds=profile.duration_s))
        for edge in edges:
            if edge is not None and 0 < (offset := (edge - start).total_seconds()) < duration_s:
                moments.add(offset)
    return sorted(moments)


def clear(
    profiles: list[LimitProfile],
    *,
    id: int | None = None,
    target: int | None = None,
    purpose: str | None = None,
    stack_level: int | None = None,
) -> list[LimitProfile]:
    """The profiles a ClearChargingProfile with these criteria keeps."""
    wanted = _PURPOSES.get(purpose) if purpose is not None else None

    def matches(p: LimitProfile) -> bool:
        if id is not None:
            return p.id == id
        return (
            (target is None or p.target == target)
            and (wanted is None or p.purpose == wanted)
            and (stack_level is None or p.stack_level == stack_level)
        )

    return [p for p in profiles if not matches(p)]


def replace(profiles: list[LimitProfile], new: LimitProfile) -> list[LimitProfile]:
    """Profiles after storing `new`: same id, or same target, purpose and stack level, go."""
    return [
        p
        for p in profiles
        if p.id != new.id
        and (p.target, p.purpose, p.stack_level) != (new.target, new.purpose, new.stack_level)
    ] + [new]


def unexpired(profiles: list[LimitProfile], now: datetime) -> list[LimitProfile]:
    """The profiles whose validTo has not passed at `now`."""
    return [p for p in profiles if p.valid_to is None or now < p.valid_to]
