"""Site-file energy needs and departures: per charger and per id token, located errors."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from hubgate.config import ConfigError, load_site
from hubgate.config.deadlines import Deadlines, Shortfall

SITE = """\
[site]
name = "depot"
timezone = "Europe/Berlin"

[grid]
phase_current_limit_a = 400

[[chargers]]
id = "bay-1"
node = "grid"
ocpp = { identity = "BAY-1" }
session_default = { energy_kwh = 180, departure = "05:30" }

[[chargers.connectors]]
id = 1
max_current_a = 32

[[session_defaults]]
id_token = "BUS-17"
energy_kwh = 250
departure = 04:45:00
floor_kwh = 180

[deadlines]
shortfall = "even"
floor_percent = 60
"""


def load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "site.toml"
    path.write_text(text)
    return load_site(path)


def test_charger_and_token_defaults_load(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(SITE)
    site = load_site(path)
    default = site.chargers[0].session_default
    assert default is not None
    assert (default.energy_kwh, default.departure) == (180.0, time(5, 30))
    token = site.session_defaults[0]
    assert (token.id_token, token.energy_kwh, token.departure) == ("BUS-17", 250.0, time(4, 45))
    assert (default.floor_kwh, token.floor_kwh) == (None, 180.0)
    assert (site.deadlines.shortfall, site.deadlines.floor_percent) == (Shortfall.EVEN, 60.0)


def test_without_a_deadlines_table_most_vehicles_finish_each_at_least_half_its_need() -> None:
    assert Deadlines() == Deadlines(shortfall=Shortfall.MOST_FINISHED, floor_percent=50.0)


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (('departure = "05:30"', 'departure = "25:30"'), "chargers[0].session_default.departure"),
        (("energy_kwh = 180", "energy_kwh = 0"), "chargers[0].session_default.energy_kwh"),
        (('id_token = "BUS-17"', 'id_token = ""'), "session_defaults[0].id_token"),
        (("floor_kwh = 180", "floor_kwh = -1"), "session_defaults[0].floor_kwh"),
        (('shortfall = "even"', 'shortfall = "fair"'), "deadlines.shortfall"),
        (("floor_percent = 60", "floor_percent = 120"), "deadlines.floor_percent"),
    ],
)
def test_a_bad_default_names_the_file_line_and_field(
    tmp_path: Path, change: tuple[str, str], where: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, SITE.replace(*change))
    found = [str(p) for p in info.value.problems]
    assert len(found) == 1
    assert found[0].startswith(str(tmp_path / "site.toml"))
    assert f": {where}:" in found[0]
