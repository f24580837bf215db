"""The charger zoo's claims (examples/scenarios/charger-zoo.toml): what the API must say of
each quirky charger (tests/runtime/test_charger_zoo_run.py)."""

from __future__ import annotations

import json
import math
from typing import Any

from hubgate.sim.scenario_loader import LoadedScenario
from hubgate.sim.station_personalities import PersonalityName


def by_personality(
    loaded: LoadedScenario, chargers: list[dict[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """The API's chargers grouped by the scenario's personality ("book": none)."""
    names = loaded.scenario.personalities
    grouped: dict[str, list[dict[str, Any]]] = {}
    for charger in chargers:
        grouped.setdefault(str(names.get(charger["id"], "book")), []).append(charger)
    return grouped


def assert_every_quirk_named(loaded: LoadedScenario, chargers: list[dict[str, Any]]) -> None:
    """GET /api/v1/chargers (`chargers`) names every personality's quirk, the liar "not
    following" with its evidence, and trusts the chargers that follow the book."""
    zoo = by_personality(loaded, chargers)
    assert set(zoo) == {*(str(p) for p in loaded.scenario.personalities.values()), "book"}

    def each(name: PersonalityName) -> list[dict[str, Any]]:
        found = zoo[str(name)]
        assert len(found) == 4
        for charger in found:
            print(name, json.dumps(charger))
        return found

    def trusted(charger: dict[str, Any], unit: str = "A") -> None:
        """Its quirk is no reason to distrust it: its checks say it follows, in its unit."""
        for connector in charger["connectors"]:
            assert connector["status"] == "following", connector
            assert f" {unit}" in connector["evidence"], connector

    for charger in each(PersonalityName.W_ONLY):
        assert charger["capabilities"]["rate_units"] == ["W"]
        trusted(charger, "W")
    for charger in each(PersonalityName.CHARGE_POINT_MAX_ONLY):
        assert [c["shared"] for c in charger["connectors"]] == [True, True]
        assert {c["purpose"] for c in charger["connectors"]} <= {
            "ChargePointMaxProfile",
            "ChargingStationMaxProfile",
        }
    for charger in each(PersonalityName.IGNORES_VALID_TO):
        assert charger["capabilities"]["honours_valid_to"] is False
        assert charger["connectors"][0]["lease"] == "schedule"
        trusted(charger)
    for charger in each(PersonalityName.ONE_STACK_LEVEL):
        assert charger["capabilities"]["max_stack_level"] == 0
        assert charger["connectors"][0]["lease"] == "schedule"
        trusted(charger)
    for charger in each(PersonalityName.ENERGY_ONLY_60S):
        provisioning = charger["provisioning"]
        assert provisioning["measurands"] is None
        refused = set(provisioning["rejected"])
        assert refused & {"MeterValueSampleInterval", "SampledDataCtrlr.TxUpdatedInterval"}
    for charger in each(PersonalityName.CLOCK_7_MIN_OFF):
        assert math.isclose(charger["capabilities"]["clock_offset_s"], -420, abs_tol=5)
        assert charger["connectors"][0]["lease"] == "relative"
        trusted(charger)
    for charger in each(PersonalityName.IGNORES_PROFILES):
        (connector,) = charger["connectors"]
        assert connector["status"] == "not following"
        # its composite schedule shows its own maximum, or its EV draws it under a lower limit
        assert connector["evidence"].startswith(("applies 32 A where", "draws 32.0 A under"))
    for charger in each(PersonalityName.PENDING_BOOT):
        assert charger["boot_delay_s"] is not None
        assert charger["boot_delay_s"] > 3
    for charger in each(PersonalityName.REBOOTS):
        assert charger["boots"] >= 2
    for charger in each(PersonalityName.PHASE_SWITCH_PAUSE):
        assert charger["capabilities"]["phase_switch"] is True
    for charger in each(PersonalityName.DC_MIN_POWER):
        assert charger["capabilities"]["rate_units"] == ["W"]
    book = zoo["book"]
    assert len(book) == 46
    statuses = {c["status"] for charger in book for c in charger["connectors"]}
    assert statuses == {"following"}
