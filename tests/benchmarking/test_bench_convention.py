"""bench/conftest.py holds every benchmark to the convention: `impl` naming hubgate, one group."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CONFTEST = Path(__file__).resolve().parents[2] / "bench" / "conftest.py"

GOOD = """
import pytest

@pytest.mark.benchmark(group="sum-case")
@pytest.mark.parametrize("impl", ["hubgate", "python-reference"])
def test_sum(benchmark, impl):
    assert benchmark(sum, [1, 2]) == 3
"""


def run_bench_dir(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    """pytest on `source` beside bench/conftest.py, with pytest-benchmark as its only plugin:
    the other installed plugins (schemathesis, hypothesis, ...) have nothing to do with the
    convention, and loading them took ~5 s of CPU per run (~30 s each at load 20)."""
    shutil.copy(CONFTEST, tmp_path / "conftest.py")
    (tmp_path / "test_bench_case.py").write_text(source)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command += ["-p", "pytest_benchmark.plugin", "--benchmark-disable"]
    return subprocess.run(
        [*command, "--rootdir", str(tmp_path), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        check=False,
    )


def test_a_conforming_benchmark_runs(tmp_path: Path) -> None:
    done = run_bench_dir(tmp_path, GOOD)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        (
            GOOD.replace(
                '@pytest.mark.parametrize("impl", ["hubgate", "python-reference"])', ""
            ).replace("benchmark, impl", "benchmark"),
            "no `impl` parameter",
        ),
        (GOOD.replace('"python-reference"', '"python_reference"'), "is not a hyphenated"),
        (GOOD.replace('"hubgate", ', ""), "no `hubgate` entry"),
    ],
    ids=["no-impl", "underscore-name", "no-hubgate"],
)
def test_collection_refuses_a_broken_case(tmp_path: Path, source: str, problem: str) -> None:
    done = run_bench_dir(tmp_path, source)
    assert done.returncode == pytest.ExitCode.USAGE_ERROR
    assert "benchmark convention broken" in done.stderr
    assert problem in done.stderr


def test_a_benchmark_without_a_group_fails(tmp_path: Path) -> None:
    done = run_bench_dir(tmp_path, GOOD.replace('@pytest.mark.benchmark(group="sum-case")', ""))
    assert done.returncode == pytest.ExitCode.TESTS_FAILED
    assert "no benchmark group" in done.stdout
