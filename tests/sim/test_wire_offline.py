"""A Modbus box off the network keeps its port, as a rebooting device keeps its address."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from hubgate.sim import load_scenario
from hubgate.sim.serving import site_thread
from tests.support.wait import wait_until_blocking
from tests.support.wire import client, read_f32, write_wire_scenario

OFFLINE = """
[[events]]
at_s = 10
kind = "charger-offline"
charger = "wb"
duration_s = 20
"""
ALFEN_CURRENTS = 320


def refused(port: int) -> bool:
    """Whether a connection to the port is refused."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def bind(port: int) -> None:
    """Bind a plain socket (no SO_REUSEADDR) to the port and let it go."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


@pytest.mark.timeout(30)
def test_an_offline_charger_refuses_keeps_its_port_and_serves_on_it_again(tmp_path: Path) -> None:
    """Nobody else is given the port while the charger is away (a client's ephemeral port,
    another server's port 0: session 11's 'address already in use' when it came back)."""
    with site_thread(load_scenario(write_wire_scenario(tmp_path, OFFLINE)), ports_auto=True) as run:
        port = run.site.boxes["wb"].port
        run.advance(12)
        wait_until_blocking(lambda: refused(port), "the charger to drop off the network")
        with pytest.raises(OSError, match="Address already in use"):
            bind(port)
        run.advance(20)
        wait_until_blocking(lambda: not refused(port), "the charger to come back")
        charger = client(port)
        try:
            assert read_f32(charger, ALFEN_CURRENTS, 1, 1) == [32.0]
        finally:
            charger.close()
    bind(port)  # closed: the port is let go
