"""`config check` warns, per Modbus charger, when its profile has no device-side failsafe."""

from __future__ import annotations

from pathlib import Path

import pytest

from hubgate.cli import EXIT_OK, main
from hubgate.config import load_site
from hubgate.config.profile_refs import failsafe_warnings


def test_each_charger_without_a_device_failsafe_is_named(
    tmp_path: Path, examples_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (examples_dir / "sites" / "small-4.toml").read_text()
    assert 'profile = "alfen-eve"' in text
    path = tmp_path / "site.toml"
    path.write_text(text.replace('profile = "alfen-eve"', 'profile = "etrel-inch"'))
    (warning,) = failsafe_warnings(load_site(path))
    assert warning.startswith("chargers[2] ")
    assert "(profile etrel-inch): no device-side failsafe, it keeps its last setpoint" in warning
    assert main(["config", "check", "--quiet", str(path)]) == EXIT_OK
    assert capsys.readouterr().err == f"{path}: warning: {warning}\n"


def test_a_site_whose_chargers_all_fall_back_is_quiet(examples_dir: Path) -> None:
    assert failsafe_warnings(load_site(examples_dir / "sites" / "small-4.toml")) == []
