"""Three real `nats-server` processes on loopback, clustered, with JetStream.

`NatsCluster.start(tmp_path)` writes each node's configuration (free client and route
ports, its own store directory, routes to the two others) and starts them; clients are
not told of the other nodes (`no_advertise`), so a client of a stopped node is cut off, as
a gateway whose own node fails. `stop_node(i)` ends one node (SIGTERM, or SIGKILL),
`start_node(i)` brings it back on the same ports and store. Readiness is read from each
node's log ("Server is ready").
"""

from __future__ import annotations

import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.peers import require_peer
from tests.support.ports import LOOPBACK, free_ports


@dataclass
class NatsNode:
    """One server of the cluster."""

    name: str
    port: int
    route_port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None
    jetstream: bool = True
    leaf: str = ""
    """Its `leafnodes` block's body: a listen address, or remotes to a hub."""

    @property
    def url(self) -> str:
        """Its client URL."""
        return f"nats://{LOOPBACK}:{self.port}"

    @property
    def log(self) -> Path:
        """Its log file."""
        return self.directory / "server.log"

    def config(self, routes: list[int]) -> str:
        """Its configuration file's text (no cluster block without routes: a single node)."""
        route_urls = ", ".join(f'"nats-route://{LOOPBACK}:{p}"' for p in routes)
        cluster = (
            f"cluster {{ name: hubgate-test, listen: {LOOPBACK}:{self.route_port}, "
            f"routes: [{route_urls}], no_advertise: true }}\n"
        )
        jetstream = (
            f'jetstream {{ store_dir: "{self.directory / "store"}", '
            "max_memory_store: 64MB, max_file_store: 512MB }\n"
        )
        return (
            f"server_name: {self.name}\nlisten: {LOOPBACK}:{self.port}\n"
            + (jetstream if self.jetstream else "")
            + (cluster if routes else "")
            + (f"leafnodes {{ {self.leaf} }}\n" if self.leaf else "")
        )


@dataclass
class NatsCluster:
    """Three clustered JetStream servers on loopback."""

    nodes: list[NatsNode] = field(default_factory=list)

    @property
    def urls(self) -> list[str]:
        """Every node's client URL."""
        return [node.url for node in self.nodes]

    @classmethod
    def start(
        cls, directory: Path, size: int = 3, *, jetstream: bool = True, leaf: str = ""
    ) -> NatsCluster:
        """Write the configurations and start every node; returns once all are ready.
        `leaf`: the body of each node's `leafnodes` block."""
        ports = free_ports(2 * size)
        cluster = cls(
            [
                NatsNode(
                    f"n{i + 1}",
                    ports[2 * i],
                    ports[2 * i + 1],
                    directory / f"n{i + 1}",
                    jetstream=jetstream,
                    leaf=leaf,
                )
                for i in range(size)
            ]
        )
        for node in cluster.nodes:
            node.directory.mkdir(parents=True, exist_ok=True)
            routes = [other.route_port for other in cluster.nodes if other is not node]
            (node.directory / "nats.conf").write_text(node.config(routes), encoding="utf-8")
        for i in range(size):
            cluster.start_node(i, wait=False)
        for i in range(size):
            cluster.wait_ready(i)
        return cluster

    def start_node(self, index: int, *, wait: bool = True) -> None:
        """Start node `index` (again) on its ports and store."""
        node = self.nodes[index]
        node.log.write_text("", encoding="utf-8")
        node.process = subprocess.Popen(
            [
                require_peer("nats-server"),
                "-c",
                str(node.directory / "nats.conf"),
                "-l",
                str(node.log),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if wait:
            self.wait_ready(index)

    def wait_ready(self, index: int, timeout_s: float = 20.0) -> None:
        """Wait for node `index`'s log to say it is ready."""
        node = self.nodes[index]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if node.process is not None and node.process.poll() is not None:
                raise RuntimeError(f"nats-server {node.name} exited: {node.log.read_text()}")
            if "Server is ready" in node.log.read_text(encoding="utf-8", errors="replace"):
                return
            time.sleep(0.05)
        raise TimeoutError(f"nats-server {node.name} not ready within {timeout_s:g} s")

    def stop_node(self, index: int, *, kill: bool = False) -> None:
        """End node `index` (SIGTERM, or SIGKILL with `kill`) and wait for it."""
        process = self.nodes[index].process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        process.wait(10)

    def close(self) -> None:
        """End every node."""
        for i in range(len(self.nodes)):
            self.stop_node(i, kill=True)
