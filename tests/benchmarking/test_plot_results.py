"""bench/plot_results.py: runs on a small results.json and plots what it holds."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "plot_results.py"
FIXTURE = Path(__file__).with_name("small_results.json")


def plot_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("plot_results", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_script_writes_a_png(tmp_path: Path) -> None:
    out = tmp_path / "docs" / "performance.png"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(FIXTURE), str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 10_000


def test_series_and_ratios_come_from_the_results() -> None:
    module = plot_module()
    results = json.loads(FIXTURE.read_text())
    assert module.scaling(results) == {
        "hubgate": [(10, 4e-06), (1000, 2e-04)],
        "python-reference": [(10, 4e-04), (1000, 5e-02)],
    }
    ratios = dict(module.speedups(results))
    assert ratios.keys() == {
        "allocate-10-connectors\nvs python-reference",
        "allocate-1000-connectors\nvs python-reference",
        "crc16-256-bytes\nvs pymodbus",
    }  # no ratio for a case without a peer
    assert ratios["crc16-256-bytes\nvs pymodbus"] == pytest.approx(30.0)
    assert ratios["allocate-1000-connectors\nvs python-reference"] == pytest.approx(250.0)
