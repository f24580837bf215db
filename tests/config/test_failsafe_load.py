"""`config check` warns where the connectors' failsafe currents pass a node's limit: where
the fallbacks fixed on their devices do (nothing would hold it if hubgate stopped while they
charge), or where the failsafe current hubgate shares out does not reach every other one
(they pause then). A Modbus charger counts what its profile says its device falls back to,
as the runtime budget does (`Failsafe.fixed_current_a`; one its device holds as read, else
at the most it may hold)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hubgate.cli import EXIT_OK, main
from hubgate.config import load_site
from hubgate.config.failsafe_load import failsafe_load, failsafe_load_warnings

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
{link}
connectors = [{{ id = 1, max_current_a = 32, phases = "{phases}" }}]
"""

OCPP = 'ocpp = {{ identity = "CP-{i}" }}'
ALFEN = 'modbus = {{ profile = "alfen-eve", host = "10.0.0.{i}" }}'
"""Falls back to its safe current, set on the device alone (read, else up to 32 A)."""
HEIDELBERG = 'modbus = {{ profile = "heidelberg-energy-control", host = "10.0.0.{i}" }}'
"""Falls back to what hubgate writes to 262, 0 A included (0 = no charging)."""


def site_file(
    tmp_path: Path,
    chargers: list[tuple[str, str, str]],
    grid_kw: float = 69,
    links: list[str] | None = None,
) -> Path:
    text = SITE.format(
        grid_kw=grid_kw,
        chargers="".join(
            CHARGER.format(
                i=i,
                node=node,
                phases=phases,
                rotation=rotation,
                link=(links[i] if links else OCPP).format(i=i),
            )
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
    load = failsafe_load(load_site(site_file(tmp_path, chargers)))
    assert load["board"].total_a(6.0) == [6.0, 12.0, 6.0]
    assert load["grid"].total_a(6.0) == [6.0, 12.0, 12.0]


def test_a_node_passed_on_failsafe_is_named_with_how_many_fit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # four three-phase connectors on a 20 A board: 24 A on failsafe, three fit
    path = site_file(tmp_path, [("board", "3p", "L1L2L3")] * 4)
    (warning,) = failsafe_load_warnings(load_site(path))
    assert (
        "under 'board' draw up to 24 A on a phase (4 whose failsafe hubgate sets), above its "
        "20 A: at most 3 of them keep it, the others fall back to 0 A" in warning
    )
    assert main(["config", "check", "--quiet", str(path)]) == EXIT_OK
    assert capsys.readouterr().err == f"{path}: warning: {warning}\n"


def test_the_connections_power_limit_counts(tmp_path: Path) -> None:
    # 3 kW = 4.3 A per phase at 230 V: one connector on its failsafe passes it
    path = site_file(tmp_path, [("grid", "3p", "L1L2L3")], grid_kw=3)
    (warning,) = failsafe_load_warnings(load_site(path))
    assert "under 'grid' draw up to 6 A on a phase (1 whose failsafe" in warning
    assert "above its 4 A: at most 0 of them keep it" in warning


def test_a_site_whose_failsafe_fits_is_quiet(tmp_path: Path, examples_dir: Path) -> None:
    assert (
        failsafe_load_warnings(load_site(site_file(tmp_path, [("board", "3p", "L1L2L3")] * 3)))
        == []
    )
    assert failsafe_load_warnings(load_site(examples_dir / "sites" / "small-4.toml")) == []


def test_fallbacks_fixed_on_the_devices_are_counted_first_and_named(tmp_path: Path) -> None:
    # four Alfens read at 6 A each (whatever hubgate asks) on the 20 A board: nothing holds it
    board = [("board", "3p", "L1L2L3")] * 4
    path = site_file(tmp_path, board, links=[ALFEN] * 4)
    read = {f"cp-{i}#1": 6.0 for i in range(4)}
    (warning,) = failsafe_load_warnings(load_site(path), held=read)
    assert (
        "the connectors under 'board' whose device falls back to a current of its own "
        "(alfen-eve) draw up to 24 A on a phase on it, above its 20 A: if hubgate stops while "
        "they charge, nothing holds its limit" in warning
    )
    assert "not read" not in warning
    # two Alfens take 12 A of it: one of two OCPP connectors keeps 6 A beside them
    (warning,) = failsafe_load_warnings(
        load_site(site_file(tmp_path, board, links=[ALFEN, ALFEN, OCPP, OCPP])), held=read
    )
    assert "up to 24 A on a phase (2 whose failsafe hubgate sets)" in warning
    assert "at most 1 of them keep it" in warning
    # not read: at the 32 A an installer may have set in ACE, each (the connection's 100 A
    # is passed too)
    path = site_file(tmp_path, board, links=[ALFEN] * 4)
    grid, warning = failsafe_load_warnings(load_site(path))
    assert "under 'grid' whose device falls back" in grid
    assert "(alfen-eve) draw up to 128 A on a phase on it, above its 20 A" in warning
    assert "the fallback 4 of these connectors hold on their device is counted" in warning


def test_a_modbus_charger_whose_fallback_hubgate_sets_shares_like_an_ocpp_one(
    tmp_path: Path,
) -> None:
    board = [("board", "3p", "L1L2L3")] * 4
    path = site_file(tmp_path, board, links=[HEIDELBERG] * 4)
    load = failsafe_load(load_site(path))["board"]
    assert (load.fixed_a, load.shared) == ([0.0, 0.0, 0.0], [4, 4, 4])
    (warning,) = failsafe_load_warnings(load_site(path))
    assert "(4 whose failsafe hubgate sets), above its 20 A: at most 3 of them keep it" in warning
