"""What a simulated station applies from its charging profiles (sans-IO)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hubgate.sim.charging_profiles import (
    LimitProfile,
    clear,
    limit_at,
    parse,
    refusal,
    replace,
    unexpired,
)

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)


def _text(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _profile(
    id: int,
    stack: int,
    periods: list[tuple[float, float]],
    *,
    purpose: str = "TxDefaultProfile",
    kind: str = "Absolute",
    unit: str = "A",
    target: int = 1,
    **extra: Any,
) -> LimitProfile:
    schedule: dict[str, Any] = {
        "charging_rate_unit": unit,
        "charging_schedule_period": [{"start_period": s, "limit": v} for s, v in periods],
    }
    for key in ("start_schedule", "duration"):
        if key in extra:
            schedule[key] = extra.pop(key)
    data = {
        "charging_profile_id": id,
        "stack_level": stack,
        "charging_profile_purpose": purpose,
        "charging_profile_kind": kind,
        "charging_schedule": schedule,
        **extra,
    }
    return parse(data, target, T0)


def _limit(
    profiles: list[LimitProfile], at_s: float, tx: bool = True, target: int = 1
) -> float | None:
    now = T0 + timedelta(seconds=at_s)
    return limit_at(profiles, target, now, tx_start=T0 if tx else None, voltage=230, phases=3)


def test_the_highest_stack_level_applies_until_its_valid_to() -> None:
    base = _profile(1, 0, [(0, 16)])
    lease = _profile(2, 1, [(0, 8)], valid_to=_text(T0 + timedelta(seconds=30)))
    assert _limit([base, lease], 10) == 8
    assert _limit([base, lease], 30) == 16  # expired: the base profile again
    assert _limit([], 10) is None


def test_periods_follow_the_schedule_and_end_with_its_duration() -> None:
    stepped = _profile(1, 0, [(0, 10), (60, 20)], start_schedule=_text(T0), duration=120)
    assert _limit([stepped], 59) == 10
    assert _limit([stepped], 60) == 20
    assert _limit([stepped], 120) is None
    not_yet = _profile(2, 0, [(0, 10)], start_schedule=_text(T0 + timedelta(hours=1)))
    assert _limit([not_yet], 10) is None


def test_recurring_profiles_wrap_daily() -> None:
    daily = _profile(
        1,
        0,
        [(0, 6), (3600, 32)],
        kind="Recurring",
        recurrency_kind="Daily",
        start_schedule=_text(T0),
    )
    assert _limit([daily], 10) == 6
    assert _limit([daily], 86_400 + 10) == 6
    assert _limit([daily], 86_400 + 3600) == 32


def test_the_station_maximum_caps_and_tx_profiles_replace_the_default() -> None:
    station_max = _profile(1, 0, [(0, 20)], purpose="ChargePointMaxProfile", target=0)
    default = _profile(2, 0, [(0, 32)])
    tx = _profile(3, 0, [(0, 12)], purpose="TxProfile")
    assert _limit([station_max, default], 5) == 20
    assert _limit([station_max, default, tx], 5) == 12
    assert _limit([station_max, default, tx], 5, tx=False) == 20  # no transaction: no TxProfile
    assert _limit([default], 5, target=2) is None  # another connector


def test_power_limits_become_amps_per_phase() -> None:
    watts = _profile(1, 0, [(0, 11_040)], unit="W")
    assert _limit([watts], 5) == pytest.approx(16.0)
    one_phase = parse(
        {
            "id": 2,
            "stack_level": 0,
            "charging_profile_purpose": "TxDefaultProfile",
            "charging_profile_kind": "Relative",
            "charging_schedule": [
                {
                    "id": 1,
                    "charging_rate_unit": "W",
                    "charging_schedule_period": [
                        {"start_period": 0, "limit": 2300, "number_phases": 1}
                    ],
                }
            ],
        },
        1,
        T0,
    )
    assert _limit([one_phase], 5) == pytest.approx(10.0)


def test_replace_and_clear() -> None:
    first = _profile(1, 0, [(0, 16)])
    same_slot = _profile(5, 0, [(0, 10)])
    other = _profile(2, 1, [(0, 8)], purpose="TxProfile")
    kept = replace(replace([first], other), same_slot)
    assert [p.id for p in kept] == [2, 5]
    assert [p.id for p in clear(kept, id=2)] == [5]
    assert [p.id for p in clear(kept, purpose="TxProfile")] == [5]
    assert [p.id for p in clear(kept, stack_level=0)] == [2]
    assert clear(kept) == []


def test_a_malformed_profile_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="malformed"):
        parse({"stack_level": 0}, 1, T0)
    with pytest.raises(ValueError, match="malformed"):
        parse({"charging_profile_purpose": "Nope", "stack_level": 0}, 1, T0)


def test_expired_profiles_are_discarded_and_the_others_kept() -> None:
    base = _profile(1, 0, [(0, 6)])
    lease = _profile(2, 1, [(0, 16)], valid_to=_text(T0 + timedelta(seconds=10)))
    assert unexpired([base, lease], T0 + timedelta(seconds=9.9)) == [base, lease]
    assert unexpired([base, lease], T0 + timedelta(seconds=10)) == [base]


START = {"start_schedule": _text(T0)}


@pytest.mark.parametrize(
    ("profile", "transaction", "why"),
    [
        (_profile(1, 0, [(0, 16)], **START), False, None),
        (
            _profile(1, 0, [(0, 16)], purpose="ChargePointMaxProfile", target=0, **START),
            False,
            None,
        ),
        (
            _profile(1, 0, [(0, 16)], purpose="ChargePointMaxProfile", **START),
            False,
            "whole station",
        ),
        (
            _profile(1, 0, [(0, 16)], purpose="ChargePointMaxProfile", target=0, kind="Relative"),
            False,
            "not Relative",
        ),
        (_profile(1, 0, [(0, 16)], purpose="TxProfile", **START), False, "transaction"),
        (_profile(1, 0, [(0, 16)], purpose="TxProfile", **START), True, None),
        (_profile(1, 0, [(0, 16)], purpose="TxProfile", target=0, **START), True, "transaction"),
        (_profile(1, 0, [(0, 16)]), False, "needs its startSchedule"),
        (_profile(1, 0, [(0, 16)], kind="Relative", **START), False, "no startSchedule"),
        (_profile(1, 0, [(10, 16)], **START), False, "start at 0"),
        (_profile(1, 0, [(0, 16), (60, 6), (30, 8)], **START), False, "rise"),
        (_profile(1, 0, [(0, -1)], **START), False, "negative"),
    ],
)
def test_a_station_refuses_what_the_book_refuses(
    profile: LimitProfile, transaction: bool, why: str | None
) -> None:
    found = refusal(profile, transaction=transaction, stored=[])
    assert found is None if why is None else why in (found or ""), found


def test_a_relative_schedule_may_have_a_start_in_1_6() -> None:
    profile = _profile(1, 0, [(0, 16)], kind="Relative", **START)
    assert refusal(profile, transaction=False, stored=[], v16=True) is None


def test_the_profiles_and_periods_a_station_holds_are_counted() -> None:
    stored = [_profile(1, 0, [(0, 6)], **START), _profile(2, 1, [(0, 16)], **START)]
    third = _profile(3, 2, [(0, 10)], **START)
    assert refusal(third, transaction=False, stored=stored, max_profiles=3) is None
    assert "more than 2 profiles" in (
        refusal(third, transaction=False, stored=stored, max_profiles=2) or ""
    )
    renewed = _profile(2, 1, [(0, 12)], **START)  # replaces one: still two
    assert refusal(renewed, transaction=False, stored=stored, max_profiles=2) is None
    two = _profile(4, 0, [(0, 16), (60, 6)], **START)
    assert "more than 1 periods" in (
        refusal(two, transaction=False, stored=[], max_periods=1) or ""
    )
