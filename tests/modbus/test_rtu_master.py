"""The RTU master on a serial line and over TCP.

Peers: a pymodbus serial server on a socat pseudo-terminal pair, a pymodbus
TCP server speaking RTU frames, and a Trio device on a pseudo-terminal for
timing, noise and silence.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial

import pytest
import trio
from pymodbus.framer import FramerType

from hubgate._core import Request, RequestReceived, Response, RtuServerCodec
from hubgate.config.model import Parity, SerialLine
from hubgate.modbus.errors import ModbusConnectionError, ModbusExceptionError, ModbusTimeoutError
from hubgate.modbus.master import ModbusDevice
from hubgate.modbus.rtu_master import open_rtu_master, open_rtu_over_tcp_master
from hubgate.modbus.serial_line import RtuTiming
from tests.support.modbus_peers import HOLDING, RunningServer, pymodbus_server


async def test_reads_and_writes_several_units_on_one_bus(pymodbus_serial: str) -> None:
    line = SerialLine(device=pymodbus_serial, baud=19200, parity=Parity.NONE)
    with trio.fail_after(10):
        async with open_rtu_master(line, timeout_s=1.0) as bus:
            one, two = ModbusDevice(bus, 1), ModbusDevice(bus, 2)
            results: dict[str, list[int]] = {}

            async def read(name: str, device: ModbusDevice, address: int) -> None:
                results[name] = await device.read_registers(address, 5)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(read, "one", one, 0)
                nursery.start_soon(read, "two", two, 10)
                nursery.start_soon(read, "one-inputs", one, 20)
            assert results == {
                "one": HOLDING[0:5],
                "two": [v * 10 for v in HOLDING[10:15]],
                "one-inputs": HOLDING[20:25],
            }
            await two.write_registers(60, [1, 2, 3])
            assert await two.read_registers(60, 3) == [1, 2, 3]
            await two.write_registers(60, [v * 10 for v in HOLDING[60:63]])
            with pytest.raises(ModbusExceptionError, match="Illegal Data Address"):
                await one.read_registers(4000, 1)
            assert bus.links_opened == 1, bus._gate.last_error
            assert one.stats.ok == 2
            assert one.stats.exceptions == 1


@dataclass
class PtyDevice:
    """A Trio RTU device on the controller end of a pseudo-terminal."""

    controller: int
    units: set[int]
    delay_s: float = 0.0
    noise: bytes = b""
    corrupt_first: bool = False
    requests: list[tuple[float, int]] = field(default_factory=list)
    answered_at: list[float] = field(default_factory=list)
    overlapping: int = 0

    async def serve(self) -> None:
        stream = trio.lowlevel.FdStream(os.dup(self.controller))
        codec = RtuServerCodec()
        busy = False
        async with stream, trio.open_nursery() as nursery:

            async def respond(event: RequestReceived) -> None:
                nonlocal busy
                await trio.sleep(self.delay_s)
                request = event.request
                assert isinstance(request, Request.ReadHoldingRegisters)
                frame = RtuServerCodec.encode_response(
                    0,
                    event.unit,
                    Response.ReadHoldingRegisters(
                        HOLDING[request.address : request.address + request.count]
                    ),
                )
                if self.corrupt_first and not self.answered_at:
                    frame = frame[:-1] + bytes([frame[-1] ^ 0xFF])  # a bad CRC
                await stream.send_all(self.noise + frame)
                self.answered_at.append(trio.current_time())
                busy = False

            while data := await stream.receive_some(256):
                codec.receive_data(data)
                while (event := codec.next_event()) is not None:
                    assert isinstance(event, RequestReceived)
                    self.requests.append((trio.current_time(), event.unit))
                    if event.unit not in self.units:
                        continue
                    if busy:
                        self.overlapping += 1
                    busy = True
                    nursery.start_soon(respond, event)


@pytest.fixture
def pty_line() -> Iterator[tuple[int, SerialLine]]:
    controller, device = os.openpty()  # the device end stays open: no EIO on the controller
    yield controller, SerialLine(device=os.ttyname(device), baud=9600, parity=Parity.EVEN)
    os.close(device)
    os.close(controller)


async def test_strictly_one_request_at_a_time_with_the_inter_frame_gap(
    pty_line: tuple[int, SerialLine],
) -> None:
    controller, line = pty_line
    device = PtyDevice(controller, units={1, 2, 3}, delay_s=0.02)
    t35 = RtuTiming.for_line(line).t35_s
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(device.serve)
            async with open_rtu_master(line) as bus, trio.open_nursery() as callers:
                for unit in (1, 2, 3, 1, 2, 3):
                    callers.start_soon(ModbusDevice(bus, unit).read_registers, unit, 2)
            nursery.cancel_scope.cancel()
    assert device.overlapping == 0
    assert len(device.requests) == 6
    # Each request arrived at least t3.5 after the previous answer left the device.
    for (arrived, _unit), answered in zip(device.requests[1:], device.answered_at, strict=False):
        assert arrived - answered >= t35


async def test_noise_before_the_answer_is_skipped(pty_line: tuple[int, SerialLine]) -> None:
    controller, line = pty_line
    device = PtyDevice(controller, units={7}, noise=b"\x00\xff\x07\x10\x99garbage")
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(device.serve)
            async with open_rtu_master(line) as bus:
                assert await ModbusDevice(bus, 7).read_registers(3, 4) == HOLDING[3:7]
                assert bus.discarded_bytes >= len(device.noise)
            nursery.cancel_scope.cancel()


async def test_a_bad_crc_fails_the_attempt_and_the_retry_succeeds(
    pty_line: tuple[int, SerialLine],
) -> None:
    controller, line = pty_line
    device = PtyDevice(controller, units={2}, corrupt_first=True)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(device.serve)
            async with open_rtu_master(line, retries=1) as bus:
                meter = ModbusDevice(bus, 2)
                assert await meter.read_registers(0, 3) == HOLDING[:3]
                assert (meter.stats.errors, meter.stats.ok) == (1, 1)
            nursery.cancel_scope.cancel()


async def test_a_missing_serial_device_is_a_connection_error() -> None:
    line = SerialLine(device="/dev/does-not-exist-hubgate", baud=9600)
    with trio.fail_after(5):
        async with open_rtu_master(line, retries=0) as bus:
            with pytest.raises(ModbusConnectionError, match="cannot open"):
                await ModbusDevice(bus, 1).read_registers(0, 1)
            assert bus.links_opened == 0


async def test_a_silent_unit_times_out_and_the_bus_goes_on(
    pty_line: tuple[int, SerialLine],
) -> None:
    controller, line = pty_line
    device = PtyDevice(controller, units={1})
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(device.serve)
            async with open_rtu_master(line, timeout_s=0.2, retries=1) as bus:
                silent = ModbusDevice(bus, 9)
                with pytest.raises(ModbusTimeoutError, match=r"/9 within 0.2 s"):
                    await silent.read_registers(0, 1)
                assert silent.stats.timeouts == 2
                assert await ModbusDevice(bus, 1).read_registers(0, 1) == HOLDING[:1]
            nursery.cancel_scope.cancel()


async def test_broadcast_is_followed_by_the_turnaround_delay(
    pty_line: tuple[int, SerialLine],
) -> None:
    controller, line = pty_line
    device = PtyDevice(controller, units={1})
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(device.serve)
            async with open_rtu_master(line, turnaround_s=0.15) as bus:
                # A broadcast write: the device codec decodes it, nobody answers.
                await bus.broadcast(Request.WriteSingleRegister(0, 5))
                sent = trio.current_time()
                await ModbusDevice(bus, 1).read_registers(0, 1)
            nursery.cancel_scope.cancel()
    assert [unit for _at, unit in device.requests] == [0, 1]
    assert device.requests[1][0] - sent >= 0.15


@pytest.fixture(scope="module")
def rtu_over_tcp() -> Iterator[RunningServer]:
    """A pymodbus TCP server that speaks RTU frames (a serial-to-Ethernet gateway)."""
    with pymodbus_server({4: HOLDING}, framer=FramerType.RTU) as server:
        yield server


async def test_rtu_over_tcp_reads_and_writes(rtu_over_tcp: RunningServer) -> None:
    with trio.fail_after(5):
        async with open_rtu_over_tcp_master("127.0.0.1", rtu_over_tcp.port) as gateway:
            device = ModbusDevice(gateway, 4)
            assert await device.read_registers(0, 10) == HOLDING[:10]
            await device.write_registers(70, [42])
            assert rtu_over_tcp.get_registers(4, 70, 1) == [42]
            with pytest.raises(ModbusExceptionError, match="exception 2"):
                await device.read_registers(3000, 2)
            assert gateway.links_opened == 1


async def test_rtu_over_tcp_reconnects_after_the_gateway_drops_the_link() -> None:
    connections = 0

    async def gateway(stream: trio.SocketStream) -> None:
        nonlocal connections
        connections += 1
        codec = RtuServerCodec()
        async with stream:
            while data := await stream.receive_some(256):
                codec.receive_data(data)
                while (event := codec.next_event()) is not None:
                    assert isinstance(event, RequestReceived)
                    request = event.request
                    assert isinstance(request, Request.ReadHoldingRegisters)
                    frame = RtuServerCodec.encode_response(
                        0,
                        event.unit,
                        Response.ReadHoldingRegisters(
                            HOLDING[request.address : request.address + request.count]
                        ),
                    )
                    if connections == 1:  # the first link breaks in the middle of the answer
                        await stream.send_all(frame[:4])
                        return
                    await stream.send_all(frame)

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(trio.serve_tcp, gateway, 0, host="127.0.0.1"))
            port = listeners[0].socket.getsockname()[1]
            async with open_rtu_over_tcp_master("127.0.0.1", port, retries=1) as bus:
                device = ModbusDevice(bus, 5)
                assert await device.read_registers(8, 3) == HOLDING[8:11]
                assert (bus.links_opened, connections) == (2, 2)
                assert (device.stats.errors, device.stats.ok) == (1, 1)
            nursery.cancel_scope.cancel()
