"""Site-file settings for the battery and PV: peak target, PV mode, SoC window, located errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from hubgate.config import ConfigError, load_site
from tests.support.toml_tables import SMA_BATTERY_20KWH, ocpp_charger

SITE = (
    """\
[site]
name = "t"

[grid]
phase_current_limit_a = 80
power_limit_kw = 50
peak_target_kw = 40

"""
    + ocpp_charger("grid", pv_mode=True)
    + "\n"
    + SMA_BATTERY_20KWH
)


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "site.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_site(path)
    return [str(p) for p in info.value.problems]


def test_energy_settings_load(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(SITE)
    site = load_site(path)
    assert site.grid.peak_target_kw == 40
    assert site.chargers[0].connectors[0].pv_mode
    assert site.battery is not None
    assert not site.battery.charge_from_grid


def test_peak_target_above_the_limit_is_located(tmp_path: Path) -> None:
    found = problems(tmp_path, SITE.replace("peak_target_kw = 40", "peak_target_kw = 60"))
    assert len(found) == 1
    assert found[0].startswith(f"{tmp_path / 'site.toml'}:4: grid:")
    assert "peak_target_kw (60) is above power_limit_kw (50)" in found[0]


def test_soc_window_must_be_open(tmp_path: Path) -> None:
    text = SITE.replace("charge_from_grid = false", "min_soc_percent = 90\nmax_soc_percent = 80")
    found = problems(tmp_path, text)
    assert len(found) == 1
    assert ": battery:" in found[0]
    assert "min_soc_percent (90) must be below max_soc_percent (80)" in found[0]


def test_pv_mode_must_be_a_boolean(tmp_path: Path) -> None:
    found = problems(tmp_path, SITE.replace("pv_mode = true", 'pv_mode = "sometimes"'))
    assert len(found) == 1
    assert ":17: chargers[0].connectors[0].pv_mode:" in found[0]
