"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import peers

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def examples_dir() -> Path:
    """The repository's `examples/` folder."""
    return ROOT / "examples"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "peers(*programs): the test runs these peer programs (see tests/support/peers.py)",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail (or skip, when opted out) a test marked `peers(...)` whose peer is missing, before
    its fixtures start and outside Trio, so the message reaches the report whole."""
    for marker in item.iter_markers("peers"):
        for program in marker.args:
            peers.require_peer(program)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Name the peers HUBGATE_SKIP_PEERS skipped: their tests did not run."""
    if peers.skipped:
        counts = ", ".join(f"{p} ({n} tests)" for p, n in sorted(peers.skipped.items()))
        terminalreporter.write_sep("=", f"{peers.SKIP_VARIABLE}: peers skipped", yellow=True)
        terminalreporter.write_line(f"not tested against: {counts}")
