"""The built wheel works on its own. `make test` builds it (`make wheel`) into target/wheels;
here it is installed into a fresh virtual environment, whose dependencies come from the test
environment (no network) but never the checkout, and it must find its firmware profiles and
dashboard files inside the installed package, with no HUBGATE_PROFILES."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WHEELS = ROOT / "target" / "wheels"
PROFILES = sorted(p.stem for p in (ROOT / "firmware-profiles").glob("*.toml"))
DASHBOARD = ROOT / "python" / "hubgate" / "api" / "static"


def run(*args: str | Path, cwd: Path, **env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if k != "HUBGATE_PROFILES"} | env
    done = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment with the wheel installed; the test environment's
    site-packages appended for the dependencies (its .pth files, hence the editable
    checkout, are not read from there)."""
    wheels = list(WHEELS.glob("hubgate-*.whl"))
    assert len(wheels) == 1, f"one wheel expected in {WHEELS}: run `make wheel` first"
    folder = tmp_path_factory.mktemp("wheel-venv")
    venv = folder / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=folder)
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", python, "install", "--quiet"]
    run(*pip, "--no-deps", "--no-index", wheels[0], cwd=folder)
    site = run(
        python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=folder
    )
    (Path(site.strip()) / "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"])
    return venv


def test_hubgate_is_imported_from_the_wheel(venv: Path) -> None:
    where = run(venv / "bin" / "python", "-c", "import hubgate; print(hubgate.__file__)", cwd=venv)
    assert Path(where.strip()).is_relative_to(venv)


def test_the_profiles_ship_inside_the_package(venv: Path) -> None:
    listed = json.loads(run(venv / "bin" / "hubgate", "profiles", "list", "--json", cwd=venv))
    assert sorted(p["name"] for p in listed) == PROFILES
    run(venv / "bin" / "hubgate", "profiles", "check", cwd=venv)
    folder = run(
        venv / "bin" / "python",
        "-c",
        "from hubgate.profiles.loader import default_dir; print(default_dir())",
        cwd=venv,
    )
    assert Path(folder.strip()).is_relative_to(venv)


def test_hubgate_profiles_still_overrides(venv: Path, tmp_path: Path) -> None:
    (tmp_path / "alfen-eve.toml").write_bytes(
        (ROOT / "firmware-profiles" / "alfen-eve.toml").read_bytes()
    )
    listed = run(
        venv / "bin" / "hubgate",
        "profiles",
        "list",
        "--json",
        cwd=venv,
        HUBGATE_PROFILES=str(tmp_path),
    )
    assert [p["name"] for p in json.loads(listed)] == ["alfen-eve"]


def test_the_dashboard_files_ship_inside_the_package(venv: Path) -> None:
    static = run(
        venv / "bin" / "python", "-c", "from hubgate.api.app import STATIC; print(STATIC)", cwd=venv
    )
    installed = Path(static.strip())
    assert installed.is_relative_to(venv)
    expected = sorted(p.name for p in DASHBOARD.iterdir())
    assert sorted(p.name for p in installed.iterdir()) == expected
    for name in expected:
        assert (installed / name).read_bytes() == (DASHBOARD / name).read_bytes()
