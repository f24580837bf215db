"""The packaged examples: one source (`examples/`), found by bare name, copied to start from."""

from __future__ import annotations

from pathlib import Path

import pytest

from hubgate.cli import EXIT_BAD_INPUT, EXIT_OK, main
from hubgate.cli.examples_cmd import description, example_files, example_path, examples_dir
from hubgate.config import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_the_package_examples_are_the_repository_examples() -> None:
    assert examples_dir() == (ROOT / "examples").resolve()
    assert sorted(example_files("sites")) == [
        "bus-depot-20",
        "bus-depot-200",
        "bus-depot-8",
        "charger-zoo",
        "depot-200",
        "depot-500",
        "small-4",
        "truck-stop-40",
    ]
    assert "grid-limit-step" in example_files("scenarios")


def test_a_bare_name_is_a_packaged_example_of_its_kind() -> None:
    """`depot-500` is both a site and a scenario: the command's kind decides."""
    assert example_path("depot-500", "sites") == examples_dir() / "sites" / "depot-500.toml"
    assert example_path("depot-500", "scenarios") == (
        examples_dir() / "scenarios" / "depot-500.toml"
    )


def test_a_path_is_taken_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "small-4").write_text("")  # an existing file wins over the packaged name
    assert example_path("small-4", "sites") == Path("small-4")
    assert example_path("mine.toml", "sites") == Path("mine.toml")  # missing: load_site says so
    assert example_path("sites/small-4", "sites") == Path("sites/small-4")


def test_an_unknown_name_lists_the_packaged_ones() -> None:
    with pytest.raises(ConfigError) as info:
        example_path("small-5", "sites")
    message = str(info.value)
    assert message.startswith("small-5: no such file, nor a packaged example")
    assert "charger-zoo, depot-200, depot-500, small-4" in message


def test_a_site_given_for_a_scenario_is_named_as_one() -> None:
    with pytest.raises(ConfigError) as info:
        example_path("small-4", "scenarios")  # `hubgate sim small-4`
    message = str(info.value)
    assert message.startswith("small-4: a packaged site, not a scenario; the packaged scenarios:")
    assert "grid-limit-step" in message
    with pytest.raises(ConfigError) as info:
        example_path("grid-limit-step", "sites")
    assert str(info.value).startswith("grid-limit-step: a packaged scenario, not a site;")


def test_copy_then_use_the_copy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "start"
    assert main(["examples", "copy", str(target)]) == EXIT_OK
    copied = sorted(str(p.relative_to(target)) for p in target.glob("*/*.toml"))
    assert copied == sorted(
        str(p.relative_to(ROOT / "examples")) for p in ROOT.glob("examples/*/*.toml")
    )
    scenario = target / "scenarios" / "grid-limit-step.toml"
    assert main(["sim", str(scenario), "--duration", "5", "--speed", "max"]) == EXIT_OK
    capsys.readouterr()
    assert main(["examples", "copy", str(target)]) == EXIT_BAD_INPUT  # never overwrites
    assert "not overwriting" in capsys.readouterr().err


def test_list_names_and_describes_them(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each example with its whole first sentence (it was cut at its first comment line's
    end), the names in one column."""
    monkeypatch.setenv("COLUMNS", "100")
    assert main(["examples", "list"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "sites:\n  bus-depot-20         A small overnight depot for the tests" in out
    assert (
        "\n  charger-zoo          The charger zoo: 100 chargers on one 630 A connection.\n" in out
    )
    assert "grid-limit-step      The grid operator's limit steps from 100 % to 30 %" in out
    listed = " ".join(out.split())
    for kind in ("sites", "scenarios"):
        for name, path in example_files(kind).items():
            first = description(path)
            assert first.endswith("."), (name, first)
            assert f"{name} {first}" in listed
    assert description(examples_dir() / "scenarios" / "bus-depot-overnight.toml") == (
        "An overnight depot: 150 buses and vans arrive 17:45-21:00, leave 04:30-06:30 and each"
        " needs 10-45 kWh; 200 bays share a 630 kW connection under a 500 kW demand target."
    )
