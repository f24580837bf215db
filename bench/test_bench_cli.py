"""Start-up cost of the command line, each run a fresh process as a user runs it.

`cli-startup`: `hubgate --help` and `hubgate config check small-4` (the packaged example)
against `python -c pass` in the same interpreter (impl `python-bare`, the floor): what
importing hubgate and the one command's modules costs on top of Python itself.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BIN = Path(sys.executable).parent
COMMANDS = {
    "python -c pass": ([sys.executable, "-c", "pass"], ""),
    "hubgate --help": ([str(BIN / "hubgate"), "--help"], "usage: hubgate"),
    "hubgate config check small-4": (
        [str(BIN / "hubgate"), "config", "check", "small-4"],
        "Small car park",
    ),
}
"""What each case runs, and what its output must contain."""


@pytest.mark.benchmark(group="cli-startup")
@pytest.mark.parametrize(
    ("impl", "command"),
    [
        ("python-bare", "python -c pass"),
        ("hubgate", "hubgate --help"),
        ("hubgate", "hubgate config check small-4"),
    ],
)
def test_cli_startup(benchmark: Any, impl: str, command: str) -> None:
    argv, expected = COMMANDS[command]

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)

    done = benchmark(run)
    assert done.returncode == 0, done.stderr
    assert expected in done.stdout
