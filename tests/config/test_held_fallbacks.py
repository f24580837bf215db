"""`hubgate config check` counts a fallback the device holds (Alfen's safe current 1212,
set in ACE Service Installer) at the most it may be, 32 A, unless `--read-fallbacks` read
it: then at the value read. Read from the Alfen's simulated device on pymodbus."""

from __future__ import annotations

from pathlib import Path

import pytest

from hubgate.cli import EXIT_OK, main
from hubgate.config import load_site
from hubgate.config.failsafe_load import failsafe_load, failsafe_load_warnings
from hubgate.profiles.loader import load_named
from hubgate.profiles.model import Quantity
from hubgate.runtime.demo import held_port
from hubgate.sim.modbus_box import serve
from hubgate.sim.simulated_device import SimulatedDevice

SITE = """
[site]
name = "sized for 6 A fallbacks"
[grid]
phase_current_limit_a = 20
[control]
failsafe_current_a = 6
lease_s = 60
[[chargers]]
id = "wb-1"
node = "grid"
modbus = {{ profile = "alfen-eve", host = "127.0.0.1", port = {port}, unit = 1 }}
connectors = [{{ id = 1, max_current_a = 32 }}]
[[chargers]]
id = "cp-1"
node = "grid"
ocpp = {{ identity = "CP-1" }}
connectors = [{{ id = 1, max_current_a = 32 }}]
"""


def site_file(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(SITE.format(port=port))
    return path


def test_a_held_fallback_not_read_counts_at_its_maximum(tmp_path: Path) -> None:
    site = load_site(site_file(tmp_path, 1502))
    assert failsafe_load(site)["grid"].fixed_a == [32.0, 32.0, 32.0]
    assert failsafe_load(site, held={"wb-1#1": 6.0})["grid"].fixed_a == [6.0, 6.0, 6.0]
    (warning,) = failsafe_load_warnings(site)
    assert "(alfen-eve) draw up to 32 A on a phase on it, above its 20 A" in warning
    assert "the fallback 1 of these connectors hold on their device is counted" in warning
    assert "--read-fallbacks" in warning
    assert failsafe_load_warnings(site, held={"wb-1#1": 6.0}) == []  # 6 + 6 A fit


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("safe_current_a", "warns"), [(32.0, True), (6.0, False)])
def test_read_fallbacks_counts_the_safe_current_the_alfen_holds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], safe_current_a: float, warns: bool
) -> None:
    alfen = SimulatedDevice(load_named("alfen-eve"))
    alfen.set(Quantity.SAFE_CURRENT, safe_current_a)
    with serve(alfen) as port:
        path = site_file(tmp_path, port)
        assert main(["config", "check", "--quiet", "--read-fallbacks", str(path)]) == EXIT_OK
    err = capsys.readouterr().err
    assert ("draw up to 32 A on a phase" in err) is warns
    assert "not read" not in err
    assert alfen.value("failsafe.fallback") == safe_current_a  # read, nothing written


@pytest.mark.timeout(60)
def test_a_fallback_that_cannot_be_read_is_named_and_counts_at_its_maximum(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with held_port() as refusing:  # bound, not listening: the device refuses
        path = site_file(tmp_path, refusing.getsockname()[1])
        assert main(["config", "check", "--quiet", "--read-fallbacks", str(path)]) == EXIT_OK
    err = capsys.readouterr().err
    assert "wb-1#1: the fallback its device holds could not be read" in err
    assert "draw up to 32 A on a phase" in err
