"""Fixtures of the Modbus transport tests: real pymodbus devices on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.modbus_peers import HOLDING, RunningServer, pymodbus_server, socat_pty_pair


@pytest.fixture(scope="module")
def pymodbus_tcp() -> Iterator[RunningServer]:
    """A pymodbus TCP server with units 1 and 2 (a gateway with two devices)."""
    with pymodbus_server({1: HOLDING, 2: [v * 10 for v in HOLDING]}) as server:
        yield server


@pytest.fixture(scope="module")
def pymodbus_serial() -> Iterator[str]:
    """The master's end of a socat pty pair whose other end a pymodbus RTU server (units 1, 2) holds."""
    with (
        socat_pty_pair() as (master_end, device_end),
        pymodbus_server({1: HOLDING, 2: [v * 10 for v in HOLDING]}, serial_port=device_end),
    ):
        yield master_end
