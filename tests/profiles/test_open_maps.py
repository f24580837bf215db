"""Every profile against fact tables transcribed from independent open register maps.

A profile and its simulated twin come from the same file, so they agree on a
wrong address, word order or scale. The tables in `open_maps/` are transcribed
from other projects' register maps (evcc, OpenEMS, mbmd, openWB, the SunSpec
models), each with its repository, commit and path: a profile that disagrees
with one fails here. A fact gives what the source states, in the source's own
unit (`scale` turns the raw value into `unit`); `signed = true` when the source
also fixes the sign in the site's convention (import and discharge positive). A
list of functions or types says the sources read a register either way (the
note beside it says why both are right).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hubgate.profiles.citations import SourceKind
from hubgate.profiles.model import DataType, Profile, Quantity, WordOrder
from hubgate.profiles.plan import all_registers, sunspec_layout
from tests.support.simulated_devices import PROFILES

OPEN_MAPS = Path(__file__).parent / "open_maps"

UNITS = {
    "A": 1.0,
    "mA": 1e-3,
    "V": 1.0,
    "mV": 1e-3,
    "W": 1.0,
    "kW": 1e3,
    "mW": 1e-3,
    "Wh": 1.0,
    "kWh": 1e3,
    "s": 1.0,
    "ms": 1e-3,
    "%": 1.0,
    "Hz": 1.0,
    "mHz": 1e-3,
    "none": 1.0,
}
"""Each unit a source may state a value in, in the canonical unit of its quantity."""


@dataclass(frozen=True)
class Check:
    """One fact of one open map about one register of one profile."""

    repo: str
    commit: str
    source_path: str
    profile: str
    register: str
    fact: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.profile}:{self.register}:{self.repo.split('/')[0]}"


def _load() -> list[Check]:
    checks = []
    for file in sorted(OPEN_MAPS.glob("*.toml")):
        data = tomllib.loads(file.read_text())
        for entry in data["maps"]:
            for profile in entry["profiles"]:
                for register, fact in entry["facts"].items():
                    checks.append(
                        Check(data["repo"], data["commit"], entry["path"], profile, register, fact)
                    )
    return checks


CHECKS = _load()


def canonical_scale(fact: dict[str, Any]) -> float:
    """The fact's scale into the quantity's canonical unit."""
    return float(fact.get("scale", 1.0)) * UNITS[fact.get("unit", "none")]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.id)
def test_profile_agrees_with_the_open_map(check: Check) -> None:
    agrees(PROFILES[check.profile], check)


def agrees(profile: Profile, check: Check) -> None:
    """Assert that `profile` states what the open map does about `check.register`."""
    registers = all_registers(profile)
    where = f"{check.repo}@{check.commit[:8]}:{check.source_path}"
    assert check.register in registers, f"{where} maps {check.register}; the profile has not"
    unit_id, spec = registers[check.register]
    fact = check.fact
    if "model" in fact:  # SunSpec: an offset from the start of a model block
        assert profile.sunspec is not None
        blocks = [n for n, b in profile.sunspec.blocks.items() if fact["model"] in b.ids]
        assert len(blocks) == 1, f"no block of model {fact['model']} in {check.profile}"
        start = sunspec_layout(profile)[blocks[0]]
        assert spec.address - start == fact["offset"], where
        if "scale_factor" in fact:
            assert spec.scale_factor_address is not None, where
            assert spec.scale_factor_address - start == fact["scale_factor"], where
    else:
        assert spec.address == fact["address"], where
    if "unit_id" in fact:
        assert (unit_id if unit_id is not None else profile.transport.unit) == fact["unit_id"]
    functions = fact.get("function", "holding")
    assert spec.function in ([functions] if isinstance(functions, str) else functions), where
    types = fact.get("type", "u16")
    assert spec.type in ([types] if isinstance(types, str) else types), where
    if spec.type in (DataType.STRING, DataType.BITFIELD) and "count" in fact:
        assert spec.count == fact["count"], where
    assert spec.order == fact.get("order", "ABCD"), where
    assert (spec.shift, spec.mask) == (fact.get("shift", 0), fact.get("mask")), where
    if "scale" in fact or "unit" in fact:  # a bare register (a state, a switch) has none
        scale = canonical_scale(fact)
        got = spec.scale if fact.get("signed") else abs(spec.scale)
        assert math.isclose(got, scale if fact.get("signed") else abs(scale), rel_tol=1e-9), (
            f"{where}: scale {spec.scale} of {check.register}, the source states {scale}"
        )


def test_every_profile_an_open_map_covers_is_cross_checked() -> None:
    checked = {c.profile for c in CHECKS}
    covered = {
        name
        for name, profile in PROFILES.items()
        if any(s.kind in (SourceKind.OPEN_MAP, SourceKind.STANDARD) for s in profile.sources)
    }
    assert covered - checked == set(), (
        "these profiles cite an open register map but no table in tests/profiles/open_maps/ "
        "transcribes one"
    )


def test_tables_cite_what_the_profiles_cite() -> None:
    """A table's file is one the profile names among its sources, at the same commit."""
    for check in CHECKS:
        cited = {(s.repo, s.commit, s.path) for s in PROFILES[check.profile].sources if s.repo}
        assert any(
            repo == check.repo and commit == check.commit and path == check.source_path
            for repo, commit, path in cited
        ), f"{check.id}: {check.source_path} is not among the profile's sources"


def test_a_wrong_fact_in_a_profile_fails_the_cross_check() -> None:
    """The check is not vacuous: a swapped word order, a moved address or a scale off by
    1000 in a profile's register is caught by the table."""
    check = next(
        c for c in CHECKS if (c.profile, c.register) == ("eastron-sdm630", "fields.power_total")
    )
    profile = PROFILES["eastron-sdm630"]
    field = profile.fields[Quantity.POWER_TOTAL]
    for wrong in ({"order": WordOrder.CDAB}, {"address": 0x36}, {"scale": 1000.0}):
        fields = {**profile.fields, Quantity.POWER_TOTAL: field.model_copy(update=wrong)}
        with pytest.raises(AssertionError):
            agrees(profile.model_copy(update={"fields": fields}), check)
    agrees(profile, check)
