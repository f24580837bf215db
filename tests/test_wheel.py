"""The built wheel works on its own, as `pip install` gives it to a user. `make test` builds it
(`make wheel`) into target/wheels; here it is installed into a fresh virtual environment that
sees neither this environment's packages nor the checkout, with its declared dependencies only
(from the package index, or PIP_FIND_LINKS), and every command runs from an empty folder:
firmware profiles, examples and dashboard files come from inside the installed package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(600)  # pip installs from the index; the demo runs 15 s

ROOT = Path(__file__).resolve().parent.parent
WHEELS = ROOT / "target" / "wheels"
PROFILES = sorted(p.stem for p in (ROOT / "firmware-profiles").glob("*.toml"))
EXAMPLES = sorted(str(p.relative_to(ROOT / "examples")) for p in ROOT.glob("examples/*/*.toml"))
DASHBOARD = ROOT / "python" / "hubgate" / "api" / "static"
LEAKS = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "HUBGATE_PROFILES", "VIRTUAL_ENV")
"""What would let the installed package see anything but itself."""


def run(*args: str | Path, cwd: Path, timeout: float = 120, **env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if k not in LEAKS} | env
    done = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{args}:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done.stdout


def packed_sources() -> list[Path]:
    """The files a wheel is built from: the package, the Rust crates, the firmware profiles
    and the examples (not what running them leaves beside them: caches, the extension)."""
    folders = ("python/hubgate", "rust", "firmware-profiles", "examples")
    return [
        p
        for folder in folders
        for p in (ROOT / folder).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".so"
    ] + [ROOT / "pyproject.toml", ROOT / "Cargo.toml"]


@pytest.fixture(scope="session")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment without system site-packages, the wheel installed into it with
    its declared dependencies (once per test run)."""
    wheels = list(WHEELS.glob("hubgate-*.whl"))
    assert len(wheels) == 1, f"one wheel expected in {WHEELS}: run `make wheel` first"
    newer = [p for p in packed_sources() if p.stat().st_mtime > wheels[0].stat().st_mtime]
    assert not newer, f"{wheels[0].name} is older than {newer[0]}: run `make wheel` first"
    folder = tmp_path_factory.mktemp("wheel-venv")
    venv = folder / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=folder)
    pip = [sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install"]
    run(*pip, "--quiet", wheels[0], cwd=folder, timeout=600)
    return venv


@pytest.fixture
def empty(tmp_path: Path) -> Path:
    """An empty working directory: nothing of the checkout around."""
    folder = tmp_path / "empty"
    folder.mkdir()
    return folder


def hubgate(venv: Path, *args: str | Path, cwd: Path, timeout: float = 120) -> str:
    return run(venv / "bin" / "hubgate", *args, cwd=cwd, timeout=timeout)


def python(venv: Path, code: str, cwd: Path) -> str:
    """What `code` prints, run by the venv's interpreter."""
    return run(venv / "bin" / "python", "-c", code, cwd=cwd).strip()


def test_nothing_outside_the_venv_is_importable(venv: Path, empty: Path) -> None:
    where = python(venv, "import hubgate, sys; print(hubgate.__file__); print(sys.path)", empty)
    module, paths = where.splitlines()
    assert Path(module).is_relative_to(venv)
    assert str(ROOT) not in paths
    run(sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "check", cwd=empty)
    with pytest.raises(AssertionError, match="ModuleNotFoundError"):  # a dev-only dependency
        python(venv, "import pytest", empty)


def test_help_lists_every_command(venv: Path, empty: Path) -> None:
    text = hubgate(venv, "--help", cwd=empty)
    for command in ("run", "demo", "sim", "config", "examples", "profiles", "modbus", "ocpp"):
        assert f"    {command} " in text


def test_the_examples_ship_inside_the_package(venv: Path, empty: Path) -> None:
    listed = hubgate(venv, "examples", "list", cwd=empty)
    for relative in EXAMPLES:
        assert f"  {Path(relative).stem} " in listed
    hubgate(venv, "examples", "copy", "mine", cwd=empty)
    copied = sorted(str(p.relative_to(empty / "mine")) for p in empty.glob("mine/*/*.toml"))
    assert copied == EXAMPLES
    for relative in EXAMPLES:
        assert (empty / "mine" / relative).read_bytes() == (
            ROOT / "examples" / relative
        ).read_bytes()


def test_config_check_of_a_packaged_example(venv: Path, empty: Path) -> None:
    tree = hubgate(venv, "config", "check", "small-4", cwd=empty)
    assert "Small car park" in tree


def test_demo_from_an_empty_directory(venv: Path, empty: Path) -> None:
    """The evaluator's first command after `pip install hubgate` (free ports, 15 s)."""
    out = hubgate(venv, "demo", "--duration", "15", "--api-port", "0", cwd=empty, timeout=180)
    assert "dashboard: http://" in out
    assert out.count("configuration loaded: 100 chargers") == 1  # narrated from the first event
    assert "the scenario's events at 0.125 x their times, to come within 15 s" in out
    assert "scenario at 7.5 s: the grid operator limits the connection to 30 % for 75 s" in out
    assert "connectors commanded to the failsafe current" in out
    assert "limit violations: " in out  # the safety recorder's summary


def test_sim_of_a_packaged_scenario(venv: Path, empty: Path) -> None:
    out = hubgate(venv, "sim", "grid-limit-step", "--duration", "60", "--speed", "max", cwd=empty)
    assert "depot-200: grid-operator limit steps to 30 %" in out


def test_the_profiles_ship_inside_the_package(venv: Path, empty: Path) -> None:
    listed = json.loads(hubgate(venv, "profiles", "list", "--json", cwd=empty))
    assert sorted(p["name"] for p in listed) == PROFILES
    hubgate(venv, "profiles", "check", cwd=empty)
    folder = python(
        venv, "from hubgate.profiles.loader import default_dir; print(default_dir())", empty
    )
    assert Path(folder).is_relative_to(venv)


def test_hubgate_profiles_still_overrides(venv: Path, tmp_path: Path) -> None:
    (tmp_path / "alfen-eve.toml").write_bytes(
        (ROOT / "firmware-profiles" / "alfen-eve.toml").read_bytes()
    )
    listed = run(
        venv / "bin" / "hubgate",
        "profiles",
        "list",
        "--json",
        cwd=tmp_path,
        HUBGATE_PROFILES=str(tmp_path),
    )
    assert [p["name"] for p in json.loads(listed)] == ["alfen-eve"]


def test_the_dashboard_files_ship_inside_the_package(venv: Path, empty: Path) -> None:
    installed = Path(python(venv, "from hubgate.api.app import STATIC; print(STATIC)", empty))
    assert installed.is_relative_to(venv)
    expected = sorted(p.name for p in DASHBOARD.iterdir())
    assert sorted(p.name for p in installed.iterdir()) == expected
    for name in expected:
        assert (installed / name).read_bytes() == (DASHBOARD / name).read_bytes()


def test_the_openapi_documents_ship_inside_the_package(venv: Path, empty: Path) -> None:
    installed = Path(python(venv, "from hubgate.api.app import OPENAPI; print(OPENAPI)", empty))
    assert installed.is_relative_to(venv)
    documents = sorted((ROOT / "python" / "hubgate" / "api" / "openapi").glob("*.json"))
    assert sorted(p.name for p in installed.iterdir()) == [p.name for p in documents]
    for path in documents:
        assert (installed / path.name).read_bytes() == path.read_bytes()
