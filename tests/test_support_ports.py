"""tests/support/ports.py: a port handed to a test stays its own until a server takes it."""

from __future__ import annotations

import errno
import socket

import pytest

from tests.support.ports import LOOPBACK, HeldPorts, bind_error, refused_port


def test_a_refused_port_is_nobody_elses_for_the_block() -> None:
    with refused_port() as port:
        assert bind_error(port) == errno.EADDRINUSE
        with socket.socket() as client, pytest.raises(ConnectionRefusedError):
            client.connect((LOOPBACK, port))
    assert bind_error(port) is None


def test_held_ports_go_one_by_one_and_are_held_again_after_their_server() -> None:
    with HeldPorts(2) as held:
        first, second = held.ports
        held.release(first)
        assert bind_error(first) is None
        assert bind_error(second) == errno.EADDRINUSE
        held.hold_again()
        assert bind_error(first) == errno.EADDRINUSE
    assert bind_error(first) is None
    assert bind_error(second) is None
