"""Small sites and scenarios written to a temporary folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

SITE = """\
[site]
name = "sim test"

[grid]
phase_current_limit_a = 200

[[nodes]]
id = "board"
kind = "switchboard"
phase_current_limit_a = 100

[[nodes]]
id = "sub"
kind = "feeder"
parent = "board"
phase_current_limit_a = 63

[[chargers]]
id = "cp-rot"
node = "sub"
phase_rotation = "L2L3L1"
ocpp = { identity = "CP-ROT" }
connectors = [{ id = 1, phases = "1p", max_current_a = 32 }, { id = 2, max_current_a = 32 }]

[[chargers]]
id = "cp-3p"
node = "board"
phase_rotation = "L3L1L2"
ocpp = { identity = "CP-3P" }
connectors = [{ id = 1, max_current_a = 32 }]

[[chargers]]
id = "cp-grid"
node = "grid"
ocpp = { identity = "CP-GRID" }
connectors = [{ id = 1, max_current_a = 16 }]

[[meters]]
id = "meter-grid"
node = "grid"
modbus = { profile = "eastron-sdm630", host = "127.0.0.1" }

[[pv]]
id = "pv"
node = "board"
modbus = { profile = "sunspec-inverter", host = "127.0.0.1" }
peak_kw = 20

[grid_operator]
source = "api"
"""

SCENARIO = """\
[scenario]
name = "test"
site = "site.toml"
duration_s = 600
seed = 3

[arrivals]
initial_occupancy = 1.0

[[ev_mix]]
name = "car"
capacity_kwh = 60
max_current_a = 32
phases = 3
reaction_s = [3, 5]

[[base_load]]
node = "board"
amps = [10, 20, 30]

[[base_load]]
node = "grid"
amps = 5
variation_percent = 10
"""


@pytest.fixture
def write_scenario(tmp_path: Path) -> Callable[..., Path]:
    """Write a site and a scenario (with extra TOML appended); the scenario's path."""

    def write(extra: str = "", scenario: str = SCENARIO, site: str = SITE) -> Path:
        (tmp_path / "site.toml").write_text(site)
        path = tmp_path / "scenario.toml"
        path.write_text(scenario + extra)
        return path

    return write


@pytest.fixture
def site_text() -> str:
    """The test site's TOML."""
    return SITE


@pytest.fixture
def scenario_text() -> str:
    """The test scenario's TOML (its site is `site.toml` beside it)."""
    return SCENARIO
