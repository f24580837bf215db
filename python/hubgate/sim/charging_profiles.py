"""What a simulated OCPP station applies from its charging profiles (1.6 and 2.0.1), sans-IO.

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
    """(start offset s, limit, number of phases) in order."""
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
            periods=tuple(sorted(periods)),
            received=received,
        )
    except (KeyError, TypeError, IndexError) as error:
        raise ValueError(f"malformed charging profile: {error!r}") from error


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
