"""Real Modbus peers for the transport tests: pymodbus servers running in a thread.

pymodbus servers are asyncio only, so each runs its own event loop in a
background thread (research/protocols.md §2.4); the test talks to it over
loopback (port 0) or a pseudo-terminal.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from tests.support.peers import require_peer

HOLDING = list(range(1000, 1100))
"""Holding (and input) registers 0-99 of unit 1 in the tests; unit 2 holds ten times as much."""


def sim_device(unit: int, holding: Sequence[int], inputs: Sequence[int] | None = None) -> SimDevice:
    """A device whose holding registers start at 0 with `holding` (inputs likewise)."""
    hr = [SimData(0, values=list(holding), datatype=DataType.REGISTERS)]
    ir = [
        SimData(
            0, values=list(inputs if inputs is not None else holding), datatype=DataType.REGISTERS
        )
    ]
    bits = [SimData(0, values=[False] * 16, datatype=DataType.BITS)]
    return SimDevice(id=unit, simdata=(bits, bits, hr, ir))


@dataclass
class RunningServer:
    """A pymodbus server in a thread: where it listens and how to change it."""

    loop: asyncio.AbstractEventLoop
    server: Any
    port: int

    def set_registers(self, unit: int, address: int, values: Sequence[int]) -> None:
        """Change holding registers as the device itself would."""
        asyncio.run_coroutine_threadsafe(
            self.server.async_setValues(unit, 16, address, list(values)), self.loop
        ).result(2)

    def get_registers(self, unit: int, address: int, count: int) -> list[int]:
        """Holding registers as the device holds them."""
        values: list[int] = asyncio.run_coroutine_threadsafe(
            self.server.async_getValues(unit, 3, address, count), self.loop
        ).result(2)
        return values


@dataclass
class PduTimes:
    """A pymodbus server's `trace_pdu`: when each request was decoded and each response
    built (before it is written), on the server's own clock."""

    events: list[tuple[float, bool]] = field(default_factory=list)
    """(time.monotonic(), sending) per PDU: False a request in, True a response out."""

    def __call__(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        self.events.append((time.monotonic(), sending))
        return pdu

    def quiet_gaps(self) -> list[float]:
        """For each request after the first: the time from the previous response to it."""
        gaps, answered = [], None
        for at, sending in list(self.events):
            if sending:
                answered = at
            elif answered is not None:
                gaps.append(at - answered)
        return gaps

    @property
    def requests(self) -> int:
        return sum(not sending for _, sending in list(self.events))


@contextmanager
def pymodbus_server(
    devices: Mapping[int, Sequence[int]],
    *,
    framer: FramerType = FramerType.SOCKET,
    serial_port: str | None = None,
    baud: int = 19200,
    trace_pdu: Callable[[bool, ModbusPDU], ModbusPDU] | None = None,
) -> Iterator[RunningServer]:
    """A pymodbus TCP server on 127.0.0.1:0 (or an RTU server on `serial_port`),
    `trace_pdu` told of every PDU (`PduTimes`, or a device's own behaviour)."""
    started = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        context = [sim_device(unit, values) for unit, values in devices.items()]
        server: Any
        if serial_port is None:
            server = ModbusTcpServer(
                context, framer=framer, address=("127.0.0.1", 0), trace_pdu=trace_pdu
            )
        else:
            server = ModbusSerialServer(
                context,
                port=serial_port,
                baudrate=baud,
                parity="N",
                framer=FramerType.RTU,
                trace_pdu=trace_pdu,
            )
        await server.serve_forever(background=True)
        box["loop"] = asyncio.get_running_loop()
        box["server"] = server
        box["port"] = server.transport.sockets[0].getsockname()[1] if serial_port is None else 0
        started.set()
        await server.serving

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    if not started.wait(5):
        raise RuntimeError("pymodbus server did not start")
    running = RunningServer(box["loop"], box["server"], box["port"])
    try:
        yield running
    finally:
        asyncio.run_coroutine_threadsafe(running.server.shutdown(), running.loop).result(5)
        thread.join(5)


@contextmanager
def socat_pty_pair() -> Iterator[tuple[str, str]]:
    """Two linked pseudo-terminals made by socat: what one end writes, the other reads."""
    process = subprocess.Popen(
        [require_peer("socat"), "-d", "-d", "pty,raw,echo=0", "pty,raw,echo=0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        paths: list[str] = []
        while len(paths) < 2:
            line = process.stderr.readline()
            if not line:
                raise RuntimeError("socat exited before opening its pseudo-terminals")
            if "PTY is " in line:
                paths.append(line.rsplit("PTY is ", 1)[1].strip())
        yield paths[0], paths[1]
    finally:
        process.terminate()
        process.wait(5)
        if process.stderr is not None:
            process.stderr.close()
