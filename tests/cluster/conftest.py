"""The `nats` fixture: three clustered nats-server processes (tests/cluster/nats_cluster.py);
the OCPP tests' charge points and CSMS (tests/ocpp) are on the path."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "ocpp"))

import pytest
from nats_cluster import NatsCluster


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
