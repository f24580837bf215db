"""Loopback ports for servers another process will start, held until it starts them.

    with HeldPorts(3) as held:
        write_config(held.ports)
        held.release()          # right before the process that listens on them starts
        start_server()

Each port is held by a socket bound to it, not listening (`hubgate.runtime.demo.held_port`,
below the kernel's ephemeral range): no other process can bind it meanwhile (another test
picking at random in the same range; seen for one of the charger zoo's Modbus ports while
its gateway started, at a load of ~15: the simulator could not listen), and a connection to
it is refused, as to a port nobody listens on.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path
from types import TracebackType

from hubgate.runtime.demo import LOOPBACK, held_port

__all__ = ["LOOPBACK", "HeldPorts", "free_ports", "run_listening"]


class HeldPorts:
    """`count` distinct loopback ports, each held here until `release`."""

    def __init__(self, count: int) -> None:
        self._holders: list[socket.socket] = []
        try:
            while len(self._holders) < count:
                self._holders.append(held_port())
        except BaseException:
            self.release()
            raise
        self.ports: list[int] = [holder.getsockname()[1] for holder in self._holders]

    def release(self) -> None:
        """Let the ports go: the process to listen on them starts next."""
        for holder in self._holders:
            holder.close()

    def __enter__(self) -> HeldPorts:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


def free_ports(count: int) -> list[int]:
    """`count` distinct ports that were free a moment ago (not held: for a process that
    starts at once)."""
    with HeldPorts(count) as held:
        return held.ports


def run_listening(run_stdout: Path) -> tuple[int, int] | None:
    """The OCPP and API ports `hubgate run` printed once it listens (given port 0 for them,
    it picks free ones); None before."""
    text = run_stdout.read_text()
    ocpp = re.search(r"OCPP on ws://[^:]+:(\d+)/", text)
    api = re.search(r"dashboard: https?://[^ ]+:(\d+)/", text)
    return None if ocpp is None or api is None else (int(ocpp[1]), int(api[1]))
