"""DC connectors in a site file: their AC currents come from their powers."""

from __future__ import annotations

from pathlib import Path

import pytest

from hubgate.config import ConfigError, load_site
from hubgate.control.allocation import SiteAllocator
from hubgate.control.site_model import SiteModel, with_finite_limits
from tests.support.toml_tables import dc_charger, dc_holding

SITE = """\
[site]
name = "dc"

[grid]
voltage_v = 230
phase_current_limit_a = 400

[[nodes]]
id = "hpc"
kind = "feeder"
phase_current_limit_a = 300

"""
DC = dc_holding(150, idle_kw=0.6)


def write(tmp_path: Path, connector: str) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(SITE + dc_charger("hpc-1", "hpc", connector))
    return path


def test_currents_from_power_efficiency_and_power_factor(tmp_path: Path) -> None:
    site = load_site(write(tmp_path, DC))
    (connector,) = site.chargers[0].connectors
    assert connector.dc is not None
    # 150 kW / (0.95 x 0.99 x 3 x 230 V) per phase; 5 kW likewise
    assert connector.max_current_a == pytest.approx(150_000 / (0.95 * 0.99 * 3 * 230), abs=1e-3)
    assert connector.min_current_a == pytest.approx(5_000 / (0.95 * 0.99 * 3 * 230), abs=1e-3)
    assert connector.dc.dc_w(connector.max_current_a, 230) == pytest.approx(150_000, rel=1e-4)
    model = SiteModel.build(site, SiteAllocator(with_finite_limits(site)))
    (info,) = model.connectors
    assert info.hold_minimum
    assert info.idle_a == pytest.approx(600 / (0.99 * 3 * 230))
    assert model.idle_a == (info.idle_a, info.idle_a)  # the feeder and the grid above it


@pytest.mark.parametrize(
    ("connector", "problem"),
    [
        (
            DC + "\nmax_current_a = 200",
            "its currents come from its dc powers; remove max_current_a",
        ),
        (DC + '\nphases = "1p"', "a DC connector draws on three phases"),
        (
            "dc = { max_power_kw = 5, min_power_kw = 50 }",
            "min_power_kw (50) is above max_power_kw (5)",
        ),
    ],
)
def test_a_wrong_dc_connector_says_what_to_change(
    tmp_path: Path, connector: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_site(write(tmp_path, connector))
    assert any(problem in str(p) for p in info.value.problems), info.value.problems
