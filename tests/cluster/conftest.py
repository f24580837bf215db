"""The `nats` fixture: three clustered nats-server processes (tests/support/nats_cluster.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.nats_cluster import NatsCluster


@pytest.fixture
def nats(tmp_path: Path) -> Iterator[NatsCluster]:
    cluster = NatsCluster.start(tmp_path / "nats")
    try:
        yield cluster
    finally:
        cluster.close()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "first_gateway_only: the simulated stations dial only the first gateway"
    )
