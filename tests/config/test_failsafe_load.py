"""`config check` warns where the connectors, all on their failsafe current, pass a node's
limit: nothing would hold it if hubgate stopped while they charge."""

from __future__ import annotations

from pathlib import Path

import pytest

from hubgate.cli import EXIT_OK, main
from hubgate.config import load_site
from hubgate.config.failsafe_load import failsafe_load_a, failsafe_load_warnings

SITE = """
[site]
name = "failsafe load"
[grid]
phase_current_limit_a = 100
power_limit_kw = {grid_kw}
[[nodes]]
id = "board"
kind = "switchboard"
phase_current_limit_a = 20
[control]
failsafe_current_a = 6
{chargers}
"""

CHARGER = """
[[chargers]]
id = "cp-{i}"
node = "{node}"
phase_rotation = "{rotation}"
ocpp = {{ identity = "CP-{i}" }}
connectors = [{{ id = 1, max_current_a = 32, phases = "{phases}" }}]
"""


def site_file(tmp_path: Path, chargers: list[tuple[str, str, str]], grid_kw: float = 69) -> Path:
    text = SITE.format(
        grid_kw=grid_kw,
        chargers="".join(
            CHARGER.format(i=i, node=node, phases=phases, rotation=rotation)
            for i, (node, phases, rotation) in enumerate(chargers)
        ),
    )
    path = tmp_path / "site.toml"
    path.write_text(text)
    return path


def test_three_phase_connectors_count_on_every_phase_one_phase_on_their_own(
    tmp_path: Path,
) -> None:
    chargers = [("board", "3p", "L1L2L3"), ("board", "1p", "L2L3L1"), ("grid", "1p", "L3L1L2")]
    load = failsafe_load_a(load_site(site_file(tmp_path, chargers)))
    assert load["board"] == (6.0, 12.0, 6.0)
    assert load["grid"] == (6.0, 12.0, 12.0)


def test_a_node_passed_on_failsafe_is_named_with_how_many_fit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # four three-phase connectors on a 20 A board: 24 A on failsafe, three fit
    path = site_file(tmp_path, [("board", "3p", "L1L2L3")] * 4)
    (warning,) = failsafe_load_warnings(load_site(path))
    assert "under 'board' draw up to 24 A on a phase (4 of them), above its 20 A" in warning
    assert "while more than 3 of them charge" in warning
    assert main(["config", "check", "--quiet", str(path)]) == EXIT_OK
    assert capsys.readouterr().err == f"{path}: warning: {warning}\n"


def test_the_connections_power_limit_counts(tmp_path: Path) -> None:
    # 3 kW = 4.3 A per phase at 230 V: one connector on its failsafe passes it
    path = site_file(tmp_path, [("grid", "3p", "L1L2L3")], grid_kw=3)
    (warning,) = failsafe_load_warnings(load_site(path))
    assert "under 'grid' draw up to 6 A on a phase (1 of them), above its 4 A" in warning
    assert "more than 0 of them" in warning


def test_a_site_whose_failsafe_fits_is_quiet(tmp_path: Path, examples_dir: Path) -> None:
    assert (
        failsafe_load_warnings(load_site(site_file(tmp_path, [("board", "3p", "L1L2L3")] * 3)))
        == []
    )
    assert failsafe_load_warnings(load_site(examples_dir / "sites" / "small-4.toml")) == []
