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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from hubgate.runtime.demo import LOOPBACK, held_port, hold

__all__ = ["LOOPBACK", "HeldPorts", "bind_error", "free_ports", "refused_port", "run_listening"]


class HeldPorts:
    """`count` distinct loopback ports, each held here until `release`."""

    def __init__(self, count: int) -> None:
        self._holders: dict[int, socket.socket] = {}
        try:
            while len(self._holders) < count:
                holder = held_port()
                self._holders[holder.getsockname()[1]] = holder
        except BaseException:
            self.release()
            raise
        self.ports: list[int] = list(self._holders)

    def release(self, *ports: int) -> None:
        """Let `ports` go (all without any): the process to listen on them starts next."""
        for port, holder in list(self._holders.items()):
            if not ports or port in ports:
                holder.close()
                del self._holders[port]

    def hold_again(self, *ports: int) -> None:
        """Hold `ports` (all without any) again after their server ended, where the port can
        be bound (not while connections of its old server linger in TIME_WAIT)."""
        for port in ports or self.ports:
            if port not in self._holders and (holder := hold(port)) is not None:
                self._holders[port] = holder

    def __enter__(self) -> HeldPorts:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


@contextmanager
def refused_port() -> Iterator[int]:
    """A loopback port that refuses connections, held for the block (nobody listens on it
    meanwhile, as could happen to a port merely found free)."""
    with HeldPorts(1) as held:
        yield held.ports[0]


def bind_error(port: int) -> int | None:
    """The errno of binding `port` on loopback as another test's server would (None: it could)."""
    with socket.socket() as other:
        try:
            other.bind((LOOPBACK, port))
        except OSError as error:
            return error.errno
    return None


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
