"""A plugin that fails on a test's failure leaves it one ordinary failure (tests/conftest.py's
FailureReportGuard): without the guard pytest ends the whole session with INTERNALERROR, and
every later test goes unrun. schemathesis's `pytest_exception_interact` (its plugin sees every
test) did so on a deeply nested exception group: RecursionError."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

DEEP = """
def test_deep_group():
    error = AssertionError("the API answered wrong")
    for level in range(600):
        error = ExceptionGroup(f"level {level}", [error])
    raise error
"""
FAILING = "def test_fails():\n    assert False\n"
AFTER = "\ndef test_after():\n    pass\n"
BROKEN_PLUGIN = (
    "def pytest_exception_interact(node, call, report):\n"
    "    raise RuntimeError('a plugin with a bug of its own')\n"
)


def run(folder: Path) -> str:
    """pytest's output on `folder`'s tests, tests/conftest.py loaded as a plugin."""
    env = os.environ | {"PYTHONPATH": str(ROOT)}  # `tests.conftest` importable
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest"]
    done = subprocess.run(
        [*args, "."], cwd=folder, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1, done.stdout[-3000:]  # tests failed; 3 is INTERNALERROR
    return done.stdout


@pytest.mark.parametrize(
    ("test", "plugin", "error"),
    [(DEEP, None, None), (FAILING, BROKEN_PLUGIN, "RuntimeError")],
    ids=["deep-exception-group", "plugin-raises"],
)
def test_a_failure_stays_an_ordinary_failure(
    tmp_path: Path, test: str, plugin: str | None, error: str | None
) -> None:
    (tmp_path / "test_one.py").write_text(test + AFTER)
    if plugin is not None:
        (tmp_path / "conftest.py").write_text(plugin)
    out = run(tmp_path)
    assert "INTERNALERROR" not in out
    assert "1 failed, 1 passed" in out
    if error is not None:
        assert f"a plugin failed on this failure: {error}" in out
