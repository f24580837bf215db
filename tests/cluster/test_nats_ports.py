"""The test cluster's nats-server ports are held while a node is down (another test's server
could take them before the node comes back on them)."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from tests.support.nats_cluster import NatsCluster
from tests.support.ports import bind_error

pytestmark = pytest.mark.peers("nats-server")


def test_a_stopped_node_keeps_its_ports(tmp_path: Path) -> None:
    cluster = NatsCluster.start(tmp_path, size=1, jetstream=False)
    try:
        node = cluster.nodes[0]
        cluster.stop_node(0)
        assert bind_error(node.port) == errno.EADDRINUSE
        assert bind_error(node.route_port) == errno.EADDRINUSE
        cluster.start_node(0)
        assert node.listening("client") == node.port
    finally:
        cluster.close()
    assert bind_error(node.port) is None
