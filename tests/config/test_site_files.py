"""Site files: the examples load, broken files report every problem located."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hubgate.cli import EXIT_BAD_INPUT, EXIT_OK, main
from hubgate.config import ConfigError, load_site, render_tree
from hubgate.config.model import PhaseRotation
from tests.support.toml_tables import ocpp_charger

SMALL = """\
[site]
name = "t"

[grid]
phase_current_limit_a = 80

[[nodes]]
id = "board"
kind = "switchboard"
phase_current_limit_a = 63

""" + ocpp_charger("board")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_site(write(tmp_path, text))
    return [str(p) for p in info.value.problems]


def test_depot_example_has_200_connectors(examples_dir: Path) -> None:
    config = load_site(examples_dir / "sites" / "depot-200.toml")
    assert sum(len(c.connectors) for c in config.chargers) == 200
    assert [n.id for n in config.nodes if n.kind == "transformer"] == ["tr1", "tr2"]
    assert len([n for n in config.nodes if n.kind == "feeder"]) == 8


def test_small_example_loads(examples_dir: Path) -> None:
    config = load_site(examples_dir / "sites" / "small-4.toml")
    assert len(config.chargers) == 4
    assert config.grid.phase_current_limit_a == (80.0, 80.0, 80.0)


def test_valid_minimal_file(tmp_path: Path) -> None:
    config = load_site(write(tmp_path, SMALL))
    assert config.nodes[0].phase_current_limit_a == (63.0, 63.0, 63.0)
    assert config.chargers[0].connectors[0].min_current_a == 6.0


def test_typo_negative_limit_and_missing_node_reported_together(tmp_path: Path) -> None:
    text = (
        SMALL.replace("phase_current_limit_a = 63", "phase_curent_limit_a = 63")
        .replace("phase_current_limit_a = 80", "phase_current_limit_a = -80")
        .replace('node = "board"', 'node = "nowhere"')
    )
    found = problems(tmp_path, text)
    assert len(found) == 3, found
    path = str(tmp_path / "site.toml")
    assert (
        f"{path}:5: grid.phase_current_limit_a: each phase limit must be a number above 0 A"
        in found[0]
    )
    assert f"{path}:10: nodes[0].phase_curent_limit_a: unknown key" in found[1]
    assert "did you mean 'phase_current_limit_a'" in found[1]
    assert f"{path}:14: chargers[0].node: node 'nowhere' does not exist" in found[2]
    assert "valid node ids: board, grid" in found[2]


def test_line_of_nested_array_of_tables(tmp_path: Path) -> None:
    found = problems(tmp_path, SMALL.replace("max_current_a = 32", "max_current_a = 0"))
    assert found == [
        f"{tmp_path / 'site.toml'}:19: chargers[0].connectors[0].max_current_a: "
        "Input should be greater than 0, got 0"
    ]


def test_cycle_duplicate_and_protocol_errors(tmp_path: Path) -> None:
    text = SMALL + (
        '\n[[nodes]]\nid = "a"\nkind = "feeder"\nparent = "b"\n'
        '\n[[nodes]]\nid = "b"\nkind = "feeder"\nparent = "a"\n'
        '\n[[nodes]]\nid = "board"\nkind = "feeder"\n'
        '\n[[chargers]]\nid = "cp-2"\nnode = "grid"\nconnectors = [{ id = 1, max_current_a = 16 }]\n'
    )
    found = "\n".join(problems(tmp_path, text))
    assert "nodes form a cycle: a -> b -> a" in found
    assert "duplicate node id 'board'" in found
    assert "give exactly one of 'ocpp' or 'modbus'" in found


def test_min_above_max_names_the_fix(tmp_path: Path) -> None:
    found = problems(
        tmp_path, SMALL.replace("max_current_a = 32", "max_current_a = 32\nmin_current_a = 40")
    )
    assert "min_current_a (40.0) is above max_current_a (32.0)" in found[0]


def test_invalid_toml(tmp_path: Path) -> None:
    found = problems(tmp_path, "[site\nname=")
    assert "not valid TOML" in found[0]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_site(tmp_path / "absent.toml")


def test_phase_rotation_maps_terminals_to_grid_phases() -> None:
    assert PhaseRotation.L1L2L3.grid_phases() == (0, 1, 2)
    assert PhaseRotation.L2L3L1.grid_phases() == (1, 2, 0)


def test_tree_lists_every_charger(examples_dir: Path) -> None:
    tree = render_tree(load_site(examples_dir / "sites" / "depot-200.toml"))
    assert tree.count("cp-") == 100
    assert "├── tr1 (transformer) 3x1000 A, 630 kW" in tree


def test_tree_counts_in_words(tmp_path: Path, examples_dir: Path) -> None:
    """One of a kind is singular ("1 node"), else plural."""
    assert render_tree(load_site(write(tmp_path, SMALL))).splitlines()[0] == (
        "t: 1 node, 1 charger, 1 connector"
    )
    first = render_tree(load_site(examples_dir / "sites" / "depot-200.toml")).splitlines()[0]
    assert first.endswith(": 10 nodes, 100 chargers, 200 connectors")


def test_cli_check_exit_codes(
    tmp_path: Path, examples_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "check", str(examples_dir / "sites" / "small-4.toml")]) == EXIT_OK
    assert "Small car park" in capsys.readouterr().out
    bad = write(tmp_path, SMALL.replace('id = "cp-1"', 'id = "cp 1"'))
    assert main(["config", "check", str(bad)]) == EXIT_BAD_INPUT
    assert "chargers[0].id" in capsys.readouterr().err


def test_cli_usage_error_exits_2() -> None:
    with pytest.raises(SystemExit) as info:
        main(["config", "frobnicate"])
    assert info.value.code == 2


def test_schema_is_json_with_all_tables(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "schema"]) == EXIT_OK
    schema = json.loads(capsys.readouterr().out)
    assert {"site", "grid", "nodes", "chargers", "control"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False


def test_a_typo_in_a_modbus_server_allowlist_names_the_entry(tmp_path: Path) -> None:
    text = SMALL + '\n[modbus_server]\nallow_reads_from = ["10.0.0.0/8", "10.0.0.300"]\n'
    found = problems(tmp_path, text)
    assert len(found) == 1, found
    assert "modbus_server.allow_reads_from" in found[0]
    assert "'10.0.0.300' is not an IP address or network" in found[0]
