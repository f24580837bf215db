"""Three real `nats-server` processes on loopback, clustered, with JetStream.

`NatsCluster.start(tmp_path)` writes each node's configuration (client and route ports held
here while the node is not running, `HeldPorts`; its own store directory, routes to the two
others) and starts them; clients are not told of the other nodes (`no_advertise`), so a
client of a stopped node is cut off, as a gateway whose own node fails. `stop_node(i)` ends
one node (SIGTERM, or SIGKILL), `start_node(i)` brings it back on the same ports and store,
`pause_node(i)` stalls it (SIGSTOP) until `pause_node(i, paused=False)`. Readiness is read
from each node's log ("Server is ready").
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.peers import require_peer
from tests.support.ports import LOOPBACK, HeldPorts


@dataclass
class NatsNode:
    """One server of the cluster."""

    name: str
    held: HeldPorts
    """Its client and route ports, held while it is not running."""
    directory: Path
    process: subprocess.Popen[bytes] | None = None
    jetstream: bool = True
    leaf: str = ""
    """Its `leafnodes` block's body: a listen address (port -1: any, `listening` says
    which), or remotes to a hub."""

    @property
    def port(self) -> int:
        """Its client port."""
        return self.held.ports[0]

    @property
    def route_port(self) -> int:
        """Its cluster route port."""
        return self.held.ports[1]

    def listening(self, kind: str) -> int:
        """The port its log says it listens on for `kind` ("client", "leafnode", ...)."""
        text = self.log.read_text(encoding="utf-8", errors="replace")
        found = re.search(rf"Listening for {kind} connections on [^ ]+:(\d+)", text)
        if found is None:
            raise RuntimeError(f"nats-server {self.name} does not listen for {kind}: {text}")
        return int(found[1])

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
        cluster = cls()
        for i in range(size):
            name = f"n{i + 1}"
            node = NatsNode(name, HeldPorts(2), directory / name, jetstream=jetstream, leaf=leaf)
            cluster.nodes.append(node)
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
        node.held.release()
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
        """End node `index` (SIGTERM, or SIGKILL with `kill`) and wait for it; its ports are
        held again until it starts."""
        node = self.nodes[index]
        process = node.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        process.wait(10)
        node.held.hold_again()

    def pause_node(self, index: int, *, paused: bool = True) -> None:
        """Stop node `index`'s process in its tracks (SIGSTOP), or let it go on (SIGCONT): a
        server that stalls, its connections kept."""
        process = self.nodes[index].process
        assert process is not None
        assert process.poll() is None
        process.send_signal(signal.SIGSTOP if paused else signal.SIGCONT)

    def close(self) -> None:
        """End every node and let its ports go."""
        for i, node in enumerate(self.nodes):
            self.stop_node(i, kill=True)
            node.held.release()
