"""Simulated chargers with a real charger's quirks (sans-IO parts; on the wire and under the
gateway in tests/runtime/test_charger_zoo.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hubgate.config import ConfigError
from hubgate.sim.charging_profiles import changes, limit_at, parse
from hubgate.sim.scenario_loader import load_scenario
from hubgate.sim.station_personalities import (
    BOOK,
    PERSONALITIES,
    PersonalityName,
    personality,
)

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
ZOO = Path(__file__).resolve().parents[2] / "examples" / "scenarios" / "charger-zoo.toml"


def test_the_book_takes_what_the_specification_allows() -> None:
    assert personality(None) is BOOK
    assert BOOK.takes("TxDefaultProfile", 8, "A")
    assert BOOK.takes("ChargePointMaxProfile", 1, "W")
    assert not BOOK.takes("TxDefaultProfile", 9, "A")
    assert BOOK.reported_units == "Current,Power"


@pytest.mark.parametrize(
    ("name", "purpose", "level", "unit", "taken"),
    [
        (PersonalityName.W_ONLY, "ChargePointMaxProfile", 1, "A", False),
        (PersonalityName.W_ONLY, "ChargePointMaxProfile", 1, "W", True),
        (PersonalityName.CHARGE_POINT_MAX_ONLY, "TxDefaultProfile", 0, "A", False),
        (PersonalityName.CHARGE_POINT_MAX_ONLY, "ChargePointMaxProfile", 1, "A", True),
        (PersonalityName.ONE_STACK_LEVEL, "ChargePointMaxProfile", 1, "A", False),
        (PersonalityName.ONE_STACK_LEVEL, "ChargePointMaxProfile", 0, "A", True),
        (PersonalityName.DC_MIN_POWER, "ChargePointMaxProfile", 1, "A", False),
        (PersonalityName.DC_MIN_POWER, "ChargePointMaxProfile", 1, "W", True),
    ],
)
def test_what_each_personality_refuses(
    name: PersonalityName, purpose: str, level: int, unit: str, taken: bool
) -> None:
    assert PERSONALITIES[name].takes(purpose, level, unit) is taken


def test_a_station_ignoring_valid_to_keeps_the_lapsed_lease() -> None:
    base = parse(
        {
            "charging_profile_id": 1,
            "stack_level": 0,
            "charging_profile_purpose": "ChargePointMaxProfile",
            "charging_profile_kind": "Absolute",
            "charging_schedule": {
                "charging_rate_unit": "A",
                "start_schedule": T0.isoformat(),
                "charging_schedule_period": [{"start_period": 0, "limit": 6}],
            },
        },
        0,
        T0,
    )
    lease = parse(
        {
            "charging_profile_id": 2,
            "stack_level": 1,
            "charging_profile_purpose": "ChargePointMaxProfile",
            "charging_profile_kind": "Absolute",
            "valid_to": (T0 + timedelta(seconds=10)).isoformat(),
            "charging_schedule": {
                "charging_rate_unit": "A",
                "start_schedule": T0.isoformat(),
                "charging_schedule_period": [{"start_period": 0, "limit": 16}],
            },
        },
        0,
        T0,
    )
    later = T0 + timedelta(seconds=20)
    book = limit_at([base, lease], 1, later, tx_start=None, voltage=230, phases=3)
    keeps = limit_at(
        [base, lease], 1, later, tx_start=None, voltage=230, phases=3, ignore_valid_to=True
    )
    assert (book, keeps) == (6, 16)
    assert changes([base, lease], T0, 60) == [0.0, 10.0]  # where a composite schedule breaks


def test_the_zoo_gives_four_chargers_each_personality() -> None:
    loaded = load_scenario(ZOO)
    counts: dict[str, int] = {}
    for name in loaded.scenario.personalities.values():
        counts[name] = counts.get(name, 0) + 1
    assert set(counts.values()) == {4}
    assert len(loaded.site.chargers) == 100


def test_a_personality_for_a_charger_that_is_not_ocpp_is_refused(tmp_path: Path) -> None:
    text = ZOO.read_text()
    scenario = tmp_path / "zoo.toml"
    scenario.write_text(
        text.replace(
            'site = "../sites/charger-zoo.toml"',
            f'site = "{ZOO.parents[1]}/sites/charger-zoo.toml"',
        )
        + '"mb-091" = "w-only"\n'
    )
    with pytest.raises(ConfigError, match="'mb-091' is not an OCPP charger of the site"):
        load_scenario(scenario)
