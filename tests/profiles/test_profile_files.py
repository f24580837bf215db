"""Profile files: all validate, broken ones are reported with file, field and fix."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import fastjsonschema
import pytest

from hubgate.cli import EXIT_BAD_INPUT, EXIT_OK, main
from hubgate.config import ConfigError, load_site
from hubgate.profiles import (
    Profile,
    default_dir,
    field_specs,
    load_all,
    load_profile,
    problems_in_file,
    profile_files,
)
from hubgate.profiles.coverage import BEGIN, END, coverage_table, with_table
from tests.support.simulated_devices import PROFILES

ALFEN = default_dir() / "alfen-eve.toml"


def test_at_least_twenty_profiles() -> None:
    assert len(PROFILES) >= 20


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_profile_file_validates(name: str) -> None:
    assert problems_in_file(default_dir() / f"{name}.toml") == []


def broken(tmp_path: Path, old: str, new: str) -> list[str]:
    path = tmp_path / "alfen-eve.toml"
    text = ALFEN.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigError) as info:
        load_profile(path)
    return [str(p) for p in info.value.problems]


def test_typo_in_field_name_names_file_line_and_fix(tmp_path: Path) -> None:
    found = broken(tmp_path, "[fields.current_l1]", "[fields.curent_l1]")
    assert len(found) == 1, found
    assert f"{tmp_path / 'alfen-eve.toml'}:" in found[0]
    assert "fields.curent_l1: unknown name 'curent_l1'; did you mean 'current_l1'?" in found[0]


def test_unknown_key_and_wrong_unit(tmp_path: Path) -> None:
    found = broken(
        tmp_path,
        'address = 1206\ntype = "f32"\nunit = "A"',
        'adress = 1206\ntype = "f32"\nunit = "A"',
    )
    assert "unknown key 'adress'; did you mean 'address'?" in "\n".join(found)
    found = broken(
        tmp_path,
        'address = 344\nsource = ["manual", "evcc"]\ntype = "f32"\nunit = "W"',
        'address = 344\nsource = ["manual", "evcc"]\ntype = "f32"\nunit = "A"',
    )
    assert "fields.power_total.unit: power_total is given in 'W': set unit = 'W'" in found[0]


def test_overlap_and_missing_failsafe_reason(tmp_path: Path) -> None:
    found = broken(tmp_path, "address = 322", "address = 321")
    assert any("fields.current_l2: holding registers 321..322 overlap" in f for f in found), found
    found = broken(tmp_path, "[failsafe]\npresent = true", "[failsafe]\npresent = false")
    assert "failsafe: an absent failsafe needs reason" in found[0]


def test_zero_means_no_limit_needs_enable(tmp_path: Path) -> None:
    found = broken(tmp_path, 'zero_means = "pause"', 'zero_means = "no-limit"')
    assert "set pause = 'enable' with a [commands.enable] switch" in found[0]


def test_pipelining_is_for_tcp_links_without_a_request_delay(tmp_path: Path) -> None:
    path = tmp_path / "alfen-eve.toml"
    path.write_text(
        ALFEN.read_text().replace("tcp_port = 502\n", "tcp_port = 502\nmax_in_flight = 4\n")
    )
    assert load_profile(path).transport.max_in_flight == 4
    found = broken(
        tmp_path,
        "tcp_port = 502\n",
        "tcp_port = 502\nmax_in_flight = 4\ninter_request_delay_ms = 20\n",
    )
    assert "max_in_flight above 1 pipelines requests over Modbus TCP" in found[0]


def test_name_must_match_file(tmp_path: Path) -> None:
    path = tmp_path / "other.toml"
    shutil.copy(ALFEN, path)
    found = [str(p) for p in problems_in_file(path)]
    assert found == [f"{path}:2: name: name 'alfen-eve' must equal the file name: use 'other'"]


def test_cli_list_check_show_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profiles", "list", "--json"]) == EXIT_OK
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in rows} == set(PROFILES)
    assert main(["profiles", "check"]) == EXIT_OK
    assert f"{len(PROFILES)} profiles ok" in capsys.readouterr().out
    assert main(["profiles", "show", "heidelberg-energy-control"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["transport"]["serial"]["baud"] == 19200
    assert main(["profiles", "show", "alfen-ev"]) == EXIT_BAD_INPUT
    assert "did you mean alfen-eve, alfen-eve-scn" in capsys.readouterr().err
    assert main(["profiles", "schema"]) == EXIT_OK
    schema = json.loads(capsys.readouterr().out)
    assert schema["additionalProperties"] is False
    assert "current_l1" in json.dumps(schema["$defs"]["Quantity"])


def test_cli_check_reports_broken_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "x.toml").write_text('name = "x"\n')
    assert main(["profiles", "--dir", str(tmp_path), "check"]) == EXIT_BAD_INPUT
    assert "required key 'vendor' is missing" in capsys.readouterr().err


def test_site_with_unknown_profile_lists_close_names(tmp_path: Path, examples_dir: Path) -> None:
    text = (examples_dir / "sites" / "small-4.toml").read_text()
    path = tmp_path / "site.toml"
    path.write_text(text.replace('profile = "alfen-eve"', 'profile = "alfen-evee"'))
    with pytest.raises(ConfigError) as info:
        load_site(path)
    (problem,) = [str(p) for p in info.value.problems]
    assert problem.startswith(f"{path}:")
    assert (
        "chargers[2].modbus.profile: no firmware profile 'alfen-evee'; did you mean alfen-eve, alfen-eve-scn?"
        in problem
    )


def test_value_checks(tmp_path: Path) -> None:
    heidelberg = default_dir() / "heidelberg-energy-control.toml"
    text = heidelberg.read_text()
    path = tmp_path / "heidelberg-energy-control.toml"
    path.write_text(
        text.replace('"2" = "A"', '"A2" = "A"')
        .replace("max = 16\n", "max = 7000\n")
        .replace("example = 0x0108", "example = 0x0108\nmatch = '^1$'")
        .replace("example = 0x0105", "example = 0x0105\nmatch = '('")
    )
    found = "\n".join(str(p) for p in problems_in_file(path))
    assert "identification[1].match: match is not a valid regular expression" in found
    path.write_text(text.replace('"2" = "A"', '"A2" = "A"').replace("max = 16\n", "max = 7000\n"))
    path.write_text(path.read_text().replace("example = 0x0108", "example = 0x0108\nmatch = '^1$'"))
    found = "\n".join(str(p) for p in problems_in_file(path))
    assert "states.map.A2: key 'A2' is not a number, but charger_state is u16" in found
    assert "commands.current_limit.max: 7000 A is raw 70000 at scale 0.1, outside u16" in found
    assert "identification[0].example: example '264' does not match '^1$'" in found


def test_missing_folder_is_one_clear_problem(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match="no profiles folder here; pass --dir or set HUBGATE_PROFILES"
    ):
        load_all(tmp_path / "absent")


def test_the_package_folder_is_the_repository_folder_unless_overridden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HUBGATE_PROFILES", raising=False)
    assert default_dir() == Path(__file__).resolve().parents[2] / "firmware-profiles"
    monkeypatch.setenv("HUBGATE_PROFILES", str(tmp_path))
    assert default_dir() == tmp_path


def test_site_device_with_a_profile_of_another_kind(tmp_path: Path, examples_dir: Path) -> None:
    text = (examples_dir / "sites" / "small-4.toml").read_text()
    path = tmp_path / "site.toml"
    path.write_text(text.replace('profile = "alfen-eve"', 'profile = "eastron-sdm630"'))
    with pytest.raises(ConfigError) as info:
        load_site(path)
    assert [p.message for p in info.value.problems] == [
        "profile 'eastron-sdm630' describes a meter, not a charger"
    ]


def test_failsafe_units_and_grid_operator_references(tmp_path: Path) -> None:
    found = broken(
        tmp_path,
        'address = 1212\ntype = "f32"\nunit = "A"\ndefault = 6',
        'address = 1212\ntype = "f32"\nunit = "W"\ndefault = 6',
    )
    assert any("failsafe.fallback.unit: the fallback is given in 'A'" in f for f in found), found
    relays = default_dir() / "grid-operator-14a-relays.toml"
    path = tmp_path / relays.name
    path.write_text(
        "\n".join(
            line
            for line in relays.read_text().splitlines()
            if not line.startswith("relay_feed_in_60 =")
        )
    )
    (problem,) = [str(p) for p in problems_in_file(path)]
    assert (
        "grid_operator.feed_in_percent.relay_feed_in_60: 'relay_feed_in_60' is not among the fields"
        in problem
    )


def test_a_heartbeat_counter_and_its_timeout_come_together(tmp_path: Path) -> None:
    box = default_dir() / "grid-operator-limit-register.toml"
    path = tmp_path / box.name
    text = box.read_text()
    path.write_text(text.replace("heartbeat_timeout_s = 60\n", ""))
    (problem,) = [str(p) for p in problems_in_file(path)]
    assert "grid_operator.heartbeat_timeout_s: grid_limit_heartbeat is read to tell a hung" in (
        problem
    )
    path.write_text(
        "\n".join(line for line in text.splitlines() if not line.startswith("grid_limit_heart"))
    )
    (problem,) = [str(p) for p in problems_in_file(path)]
    assert "a heartbeat timeout needs the counter: add [fields.grid_limit_heartbeat]" in problem


def test_exported_schema_accepts_every_profile_and_rejects_a_typo() -> None:
    validate = fastjsonschema.compile(Profile.model_json_schema())
    for path in profile_files().values():
        validate(tomllib.loads(path.read_text()))
    data = tomllib.loads(ALFEN.read_text())
    data["fields"]["voltage_l1"]["adress"] = 1
    with pytest.raises(fastjsonschema.JsonSchemaException):
        validate(data)


def test_field_specs_are_zero_based_wire_addresses() -> None:
    iem = field_specs(PROFILES["schneider-iem3000"])
    assert iem["voltage_l1"].address == 3027  # manual 3028, doc_base 1
    assert iem["energy_import"].count == 4
    meter = field_specs(PROFILES["sunspec-meter"])
    meter_block = 40002 + 2 + 66  # "SunS", then the common block
    assert meter["power_total"].address == meter_block + 18
    assert meter["power_total"].scale_factor_address == meter_block + 22
    blocks = {"common": 40002, "meter": 50000}  # as discovered on another device
    assert field_specs(PROFILES["sunspec-meter"], blocks)["power_total"].address == 50018
    abb = field_specs(PROFILES["abb-terra-ac"])
    assert (abb["charger_state"].shift, abb["charger_state"].mask) == (8, 0x7F)


def test_percent_setpoints_and_sunspec_switch_blocks(tmp_path: Path) -> None:
    hybrid = default_dir() / "sunspec-hybrid-storage.toml"
    text = hybrid.read_text()
    path = tmp_path / hybrid.name

    def problems(old: str, new: str) -> str:
        assert old in text
        path.write_text(text.replace(old, new, 1))
        return "\n".join(str(p) for p in problems_in_file(path))

    rating = "battery_max_charge_power = {"
    found = problems(rating, "battery_max_discharge_power = {")
    assert (
        "commands.charge_power_limit.percent_of: 'battery_max_charge_power' is not among the fields"
        in found
    )
    found = problems('unit = "%"\npercent_of', 'unit = "W"\npercent_of')
    assert "a setpoint in percent of battery_max_charge_power needs unit = '%'" in found
    found = problems('block = "storage"\naddress = 5', 'block = "batt"\naddress = 5')
    assert "commands.enable.block: SunSpec block 'batt' is not declared" in found


def test_the_coverage_table_is_generated_from_the_profiles() -> None:
    doc = Path(__file__).resolve().parents[2] / "docs" / "profiles.md"
    text = doc.read_text()
    assert text == with_table(text, coverage_table(PROFILES.values())), (
        "docs/profiles.md's coverage table is stale: run "
        "`python -m hubgate.profiles.coverage docs/profiles.md`"
    )
    table = text[text.index(BEGIN) : text.index(END)]
    assert table.count("\n| `") == len(PROFILES)
