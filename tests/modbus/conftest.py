"""Fixtures of the Modbus transport tests: real pymodbus devices on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from modbus_peers import RunningServer, pymodbus_server

HOLDING = list(range(1000, 1100))
"""Holding (and input) registers 0-99 of unit 1; unit 2 holds ten times as much."""


@pytest.fixture(scope="module")
def pymodbus_tcp() -> Iterator[RunningServer]:
    """A pymodbus TCP server with units 1 and 2 (a gateway with two devices)."""
    with pymodbus_server({1: HOLDING, 2: [v * 10 for v in HOLDING]}) as server:
        yield server
