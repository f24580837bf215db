"""hubgate's Modbus TCP server against real clients: pymodbus's client and mbpoll.

Time for the leases is a hand-moved clock, so expiry is tested without sleeping.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

import pytest
import trio
import trio.testing
from pymodbus.client import ModbusTcpClient

from hubgate._core import Request, Response, TcpClientCodec, TcpServerCodec
from hubgate.cli import main
from hubgate.config.model import SiteConfig
from hubgate.config.services import ModbusServer
from hubgate.control.commands import Commands, SiteCommands
from hubgate.control.limits import SITE, AuditAction, Limit, LimitBook, LimitSource
from hubgate.modbus.errors import ExceptionCode
from hubgate.modbus_api.registers import SiteLayout
from hubgate.modbus_api.server import serve_modbus
from hubgate.state import DeviceHealth, SessionView, SiteState, StateHub
from tests.support.api import RecordingCommands
from tests.support.loop_site import PlannedSite, SimSite
from tests.support.peers import require_peer
from tests.support.states import connector, node, site_state

SITE_FILE = {
    "site": {"name": "modbus server test"},
    "grid": {"phase_current_limit_a": 400},
    "nodes": [{"id": "board", "kind": "switchboard", "phase_current_limit_a": 250}],
    "chargers": [
        {
            "id": "cp-1",
            "node": "board",
            "ocpp": {"identity": "cp-1"},
            "connectors": [{"id": 1, "max_current_a": 32}, {"id": 2, "max_current_a": 32}],
        },
        {
            "id": "cp-2",
            "node": "grid",
            "ocpp": {"identity": "cp-2"},
            "connectors": [{"id": 1, "max_current_a": 63}],
        },
    ],
    "meters": [{"id": "meter-1", "node": "board", "modbus": {"profile": "x", "host": "10.0.0.9"}}],
}
LEASE_S = 30.0
CONFIG_LIMIT_A = 400.0


def snapshot() -> SiteState:
    return site_state(
        site="modbus server test",
        cycle=77,
        at=time.time(),
        nodes=[
            node("grid", measured_a=(50.0, 40.5, -3.0), limit_a=(400.0, 400.0, 400.0)),
            node(
                "board",
                parent="grid",
                commanded_a=(32.0, 32.0, 32.0),
                limit_a=(250.0, 250.0, 250.0),
                budget_share=0.5,
            ),
        ],
        connectors=[
            connector(
                "cp-1#2",
                node="board",
                measured_a=(15.9, 16.0, 15.8),
                power_kw=11.04,
                energy_kwh=3.5,
            )
        ],
        devices=[
            DeviceHealth(
                id="meter-1",
                kind="meter",
                protocol="modbus",
                reachable=True,
                requests=70_000,
                errors=3,
            )
        ],
    )


@dataclass
class Running:
    port: int
    limits: LimitBook
    clock: list[float]
    hub: StateHub


@asynccontextmanager
async def running_server(
    allow: tuple[str, ...] = ("127.0.0.1",),
    commands: Commands | None = None,
    **options: object,
) -> AsyncIterator[Running]:
    site = SiteConfig.model_validate(SITE_FILE)
    hub = StateHub()
    hub.publish(snapshot())
    limits = LimitBook(wall_clock=lambda: 1_010.0)
    clock = [0.0]
    limits.set(
        SITE,
        LimitSource.CONFIG,
        Limit(phase_a=(CONFIG_LIMIT_A,) * 3),
        now=0.0,
        lease_s=None,
        origin="site file",
    )
    config = ModbusServer.model_validate(
        {
            "host": "127.0.0.1",
            "port": 0,
            "unit": 1,
            "allow_writes_from": allow,
            "lease_s": LEASE_S,
            **options,
        }
    )
    async with trio.open_nursery() as nursery:
        port = await nursery.start(
            partial(
                serve_modbus, config, site, hub, limits, commands=commands, clock=lambda: clock[0]
            )
        )
        yield Running(port, limits, clock, hub)
        nursery.cancel_scope.cancel()


def with_client(port: int, action: Callable[[ModbusTcpClient], object]) -> object:
    client = ModbusTcpClient("127.0.0.1", port=port, timeout=2)
    assert client.connect()
    try:
        return action(client)
    finally:
        client.close()


async def in_thread(port: int, action: Callable[[ModbusTcpClient], object]) -> object:
    return await trio.to_thread.run_sync(with_client, port, action)


async def test_pymodbus_client_reads_the_site() -> None:
    with trio.fail_after(10):
        async with running_server() as server:
            site = await in_thread(
                server.port, lambda c: c.read_input_registers(0, count=13, device_id=1).registers
            )
            assert site[:8] == [1, 1, 0, 77, site[4], 2, 3, 3]
            assert site[4] < 600  # snapshot age below a minute, in 0.1 s
            assert site[8:10] == [0, 4000]  # 400.0 A in force, from the site file
            assert site[12] == 1  # only the config source
            grid = await in_thread(
                server.port, lambda c: c.read_input_registers(100, count=22, device_id=1).registers
            )
            assert grid[0:6] == [0, 500, 0, 405, 0xFFFF, 0xFFE2]  # 50.0, 40.5, -3.0 A
            assert grid[12:14] == [0, 4000]
            board = await in_thread(
                server.port, lambda c: c.read_input_registers(130, count=22, device_id=1).registers
            )
            assert board[0:6] == [0x8000, 0] * 3  # not metered: not available
            assert board[21] == 500  # budget share 50.0 %
            # Connector 0 (cp-1#1) has no state yet; connector 1 (cp-1#2) is charging.
            connectors = await in_thread(
                server.port, lambda c: c.read_input_registers(2100, count=40, device_id=1).registers
            )
            assert connectors[0] == 0xFFFF
            assert connectors[20:28] == [3, 3, 160, 159, 160, 158, 0, 11040]
            assert connectors[28:30] == [0, 3500]
            device = await in_thread(
                server.port, lambda c: c.read_input_registers(22120, count=5, device_id=1).registers
            )
            assert device == [
                1,
                1,
                4464,
                0,
                3,
            ]  # meter-1 (after cp-1 and cp-2): 70000 requests, 3 errors


async def test_a_written_site_limit_is_a_lease_and_the_default_returns() -> None:
    with trio.fail_after(10):
        async with running_server() as server:
            result = await in_thread(
                server.port, lambda c: c.write_registers(0, [0, 2500, 0, 1500], device_id=1)
            )
            assert not result.isError()
            in_force = server.limits.in_force(SITE, server.clock[0])
            assert in_force.limit == Limit(phase_a=(250.0, 250.0, 250.0), power_kw=150.0)
            assert in_force.sources == (LimitSource.CONFIG, LimitSource.MODBUS_SERVER)
            holding = await in_thread(
                server.port, lambda c: c.read_holding_registers(0, count=8, device_id=1).registers
            )
            assert holding == [
                0,
                2500,
                0,
                1500,
                0,
                300,
                0,
                300,
            ]  # lease 30.0 s remaining, of 30.0 s
            site = await in_thread(
                server.port, lambda c: c.read_input_registers(8, count=5, device_id=1).registers
            )
            assert site == [0, 2500, 0, 1500, 0b11]

            server.clock[0] = LEASE_S - 1
            holding = await in_thread(
                server.port, lambda c: c.read_holding_registers(4, count=2, device_id=1).registers
            )
            assert holding == [0, 10]
            server.clock[0] = LEASE_S + 0.1
            site = await in_thread(
                server.port, lambda c: c.read_input_registers(8, count=5, device_id=1).registers
            )
            assert site == [0, 4000, 0xFFFF, 0xFFFF, 0b1]  # the configured limit is back
            holding = await in_thread(
                server.port, lambda c: c.read_holding_registers(0, count=4, device_id=1).registers
            )
            assert holding == [0xFFFF] * 4
            actions = [(e.action, e.source) for e in server.limits.audit()]
            assert actions[-2:] == [
                (AuditAction.SET, LimitSource.MODBUS_SERVER),
                (AuditAction.EXPIRED, LimitSource.MODBUS_SERVER),
            ]
            assert server.limits.audit()[-1].origin.startswith("modbus 127.0.0.1:")


async def test_connector_limit_write_and_clear() -> None:
    with trio.fail_after(10):
        async with running_server() as server:
            # cp-2#1 is the third connector: holding 100 + 2 * 4.
            await in_thread(server.port, lambda c: c.write_register(108, 100, device_id=1))
            assert server.limits.in_force("cp-2#1", 0.0).limit == Limit(phase_a=(10.0, 10.0, 10.0))
            connector = await in_thread(
                server.port, lambda c: c.read_input_registers(2140, count=13, device_id=1).registers
            )
            assert connector[12] == 100
            await in_thread(server.port, lambda c: c.write_register(108, 0xFFFF, device_id=1))
            assert server.limits.in_force("cp-2#1", 0.0).sources == ()
            assert server.limits.audit()[-1].action is AuditAction.CLEARED


async def test_writes_from_outside_the_allowlist_are_refused_reads_are_not() -> None:
    with trio.fail_after(10):
        async with running_server(allow=("10.1.2.0/24",)) as server:
            result = await in_thread(server.port, lambda c: c.write_register(100, 60, device_id=1))
            assert result.isError()
            assert result.exception_code == ExceptionCode.ILLEGAL_FUNCTION
            assert server.limits.in_force("cp-1#1", 0.0).sources == ()
            assert await in_thread(
                server.port, lambda c: c.read_input_registers(0, count=1, device_id=1).registers
            ) == [1]


async def raw_exchange(port: int, frame: bytes) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(frame)
        return await stream.receive_some(512)


def raw_request(unit: int, request: Request) -> bytes:
    return TcpClientCodec().encode_request(unit, request)[1]


@pytest.mark.parametrize(
    ("frame", "function", "code"),
    [
        (
            raw_request(1, Request.ReadInputRegisters(2050, 2)),
            4,
            ExceptionCode.ILLEGAL_DATA_ADDRESS,
        ),
        (
            raw_request(1, Request.ReadInputRegisters(2150, 11)),
            4,
            ExceptionCode.ILLEGAL_DATA_ADDRESS,
        ),
        (
            raw_request(1, Request.ReadHoldingRegisters(5, 10)),
            3,
            ExceptionCode.ILLEGAL_DATA_ADDRESS,
        ),
        (bytes.fromhex("000100000006010400000000"), 4, ExceptionCode.ILLEGAL_DATA_VALUE),  # count 0
        (
            bytes.fromhex("00010000000601030000007e"),
            3,
            ExceptionCode.ILLEGAL_DATA_VALUE,
        ),  # count 126
        (
            raw_request(1, Request.WriteSingleRegister(100, 10_001)),
            6,
            ExceptionCode.ILLEGAL_DATA_VALUE,
        ),
        (
            raw_request(1, Request.WriteMultipleRegisters(2, [0xFFFF, 0])),
            16,
            ExceptionCode.ILLEGAL_DATA_VALUE,
        ),
        (raw_request(1, Request.WriteSingleRegister(4, 1)), 6, ExceptionCode.ILLEGAL_DATA_ADDRESS),
        (raw_request(1, Request.WriteSingleRegister(0, 1)), 6, ExceptionCode.ILLEGAL_DATA_ADDRESS),
        (
            raw_request(1, Request.WriteMultipleRegisters(100, [10, 0])),
            16,
            ExceptionCode.ILLEGAL_DATA_ADDRESS,
        ),
        (raw_request(1, Request.ReadCoils(0, 8)), 1, ExceptionCode.ILLEGAL_FUNCTION),
        (
            raw_request(7, Request.ReadInputRegisters(0, 1)),
            4,
            ExceptionCode.GATEWAY_PATH_UNAVAILABLE,
        ),
    ],
)
async def test_exception_codes(frame: bytes, function: int, code: ExceptionCode) -> None:
    with trio.fail_after(10):
        async with running_server() as server:
            answer = await raw_exchange(server.port, frame)
            assert answer == TcpServerCodec.encode_exception(
                int.from_bytes(frame[:2]), frame[6], function, code
            )
            assert server.limits.in_force(SITE, 0.0).sources == (LimitSource.CONFIG,)


async def test_a_client_sending_garbage_loses_only_its_connection() -> None:
    with trio.fail_after(10):
        async with running_server() as server:
            assert await raw_exchange(server.port, b"\xff" * 20) == b""
            codec = TcpClientCodec()
            _tid, frame = codec.encode_request(255, Request.ReadInputRegisters(0, 2))
            codec.receive_data(await raw_exchange(server.port, frame))
            event = codec.next_event()
            assert event is not None
            assert event.response == Response.ReadInputRegisters([1, 1])  # type: ignore[union-attr]


Mbpoll = Callable[..., Awaitable[subprocess.CompletedProcess[bytes]]]


@pytest.fixture
def mbpoll() -> Mbpoll:
    """Run mbpoll (unit 1, 0-based, one poll) against 127.0.0.1:PORT with these arguments."""
    binary = require_peer("mbpoll")

    async def run(port: int, *args: str) -> subprocess.CompletedProcess[bytes]:
        command = [binary, "-m", "tcp", "-p", str(port), "-a", "1", "-0", "-1", "-o", "2", *args]
        return await trio.run_process(
            command, capture_stdout=True, capture_stderr=True, check=False
        )

    return run


async def test_mbpoll_reads_and_writes(mbpoll: Mbpoll) -> None:
    with trio.fail_after(20):
        async with running_server() as server:
            read = await mbpoll(server.port, "-t", "3", "-r", "0", "-c", "8", "127.0.0.1")
            assert read.returncode == 0, read.stderr
            values = dict(re.findall(rb"\[(\d+)\]:\s+(-?\d+)", read.stdout))
            assert values[b"0"] == b"1"  # map version
            assert values[b"3"] == b"77"  # cycle
            assert values[b"6"] == b"3"  # connectors
            write = await mbpoll(server.port, "-t", "4", "-r", "100", "127.0.0.1", "125")
            assert write.returncode == 0, write.stderr
            assert server.limits.in_force("cp-1#1", 0.0).limit == Limit(phase_a=(12.5, 12.5, 12.5))
            bad = await mbpoll(server.port, "-t", "4", "-r", "100", "127.0.0.1", "20000")
            assert bad.returncode != 0
            assert b"Illegal data value" in bad.stdout + bad.stderr


async def test_mbpoll_write_outside_the_allowlist_is_refused(mbpoll: Mbpoll) -> None:
    with trio.fail_after(20):
        async with running_server(allow=("192.0.2.1",)) as server:
            write = await mbpoll(server.port, "-t", "4", "-r", "100", "127.0.0.1", "125")
            assert write.returncode != 0
            assert b"Illegal function" in write.stdout + write.stderr
            assert server.limits.in_force("cp-1#1", 0.0).sources == ()


async def test_hubgate_cli_reads_and_writes_the_server(capsys: pytest.CaptureFixture[str]) -> None:
    with trio.fail_after(10):
        async with running_server() as server:
            target = (f"127.0.0.1:{server.port}",)
            read = partial(
                main,
                ["modbus", "read", *target, "--function", "4", "--address", "8", "--type", "u32"],
            )
            assert await trio.to_thread.run_sync(read) == 0
            write = partial(
                main,
                ["modbus", "write", *target, "--address", "2", "--type", "u32", "--values", "900"],
            )
            assert await trio.to_thread.run_sync(write) == 0
            refused = partial(main, ["modbus", "write", *target, "--address", "4", "--values", "1"])
            assert await trio.to_thread.run_sync(refused) == 1
    out, err = capsys.readouterr()
    assert out.startswith("8\t4000\n")  # 400.0 A in force
    assert server.limits.in_force(SITE, 0.0).limit.power_kw == 90.0
    assert "exception 2 (Illegal Data Address)" in err


async def test_a_site_limit_above_the_site_file_reads_the_site_file_in_force() -> None:
    """Issue 19: a written 500 A on an 80 A site showed 500 A "in force"; the controller
    (correctly) held 80 A. The request stays visible in the holding registers."""
    with trio.fail_after(10):
        async with running_server() as server:
            written = await in_thread(
                server.port, lambda c: c.write_registers(0, [0, 5000], device_id=1)
            )
            assert not written.isError()
            site = await in_thread(
                server.port, lambda c: c.read_input_registers(8, count=5, device_id=1).registers
            )
            assert site[0:2] == [0, 4000]  # 400.0 A: the site file's limit, not the 500 A asked
            assert site[4] == 0b11  # config binds; the Modbus lease is held
            request = await in_thread(
                server.port, lambda c: c.read_holding_registers(0, count=2, device_id=1).registers
            )
            assert request == [0, 5000]  # what was written
            # cp-2#1 (63 A at most) asked for 100 A: 63 A in force.
            await in_thread(server.port, lambda c: c.write_register(108, 1000, device_id=1))
            connector = await in_thread(
                server.port, lambda c: c.read_input_registers(2152, count=1, device_id=1).registers
            )
            assert connector == [630]


@pytest.mark.parametrize("function", [0x00, 0x80, 0x83, 0xFF])
async def test_function_code_0_and_0x80_up_are_answered_illegal_function(function: int) -> None:
    with trio.fail_after(10):
        async with running_server() as server:
            stream = await trio.open_tcp_stream("127.0.0.1", server.port)
            async with stream:
                await stream.send_all(bytes([0, 9, 0, 0, 0, 2, 1, function]))
                answer = await stream.receive_some(512)
                assert answer == bytes([0, 9, 0, 0, 0, 3, 1, function | 0x80, 1])
                codec = TcpClientCodec()
                _tid, frame = codec.encode_request(1, Request.ReadInputRegisters(0, 1))
                await stream.send_all(frame)  # the same connection goes on
                codec.receive_data(await stream.receive_some(512))
                event = codec.next_event()
                assert event is not None
                assert event.response == Response.ReadInputRegisters([1])  # type: ignore[union-attr]


async def test_clients_outside_the_read_allowlist_are_disconnected() -> None:
    with trio.fail_after(10):
        async with running_server(
            allow=("192.0.2.1",), allow_reads_from=("198.51.100.0/24",)
        ) as server:
            stream = await trio.open_tcp_stream("127.0.0.1", server.port)
            async with stream:
                await stream.send_all(raw_request(1, Request.ReadInputRegisters(0, 1)))
                assert await stream.receive_some(512) == b""  # closed, nothing answered
        async with running_server(allow=("192.0.2.1",), allow_reads_from=("127.0.0.1",)) as server:
            registers = await in_thread(
                server.port, lambda c: c.read_input_registers(0, count=1, device_id=1).registers
            )
            assert registers == [1]
        # A client that may write may read, whatever allow_reads_from says.
        async with running_server(allow=("127.0.0.1",), allow_reads_from=("192.0.2.9",)) as server:
            registers = await in_thread(
                server.port, lambda c: c.read_input_registers(0, count=1, device_id=1).registers
            )
            assert registers == [1]


async def test_an_idle_client_is_closed_after_the_idle_timeout() -> None:
    with trio.fail_after(10):
        async with running_server(idle_timeout_s=0.2) as server:
            stream = await trio.open_tcp_stream("127.0.0.1", server.port)
            async with stream:
                await stream.send_all(raw_request(1, Request.ReadInputRegisters(0, 1)))
                assert await stream.receive_some(512)  # answered
                assert await stream.receive_some(512) == b""  # then closed for idling


async def test_a_connection_over_the_cap_closes_the_quietest_one() -> None:
    with trio.fail_after(20):
        async with running_server(max_connections=3) as server:
            codec = TcpClientCodec()
            streams = []
            for _ in range(3):
                streams.append(await trio.open_tcp_stream("127.0.0.1", server.port))
            # The third talks first, then the other two: the third is the quietest now.
            for stream in (streams[2], streams[0], streams[1]):
                _tid, frame = codec.encode_request(1, Request.ReadInputRegisters(0, 1))
                await stream.send_all(frame)
                assert await stream.receive_some(512)
            registers = await in_thread(
                server.port, lambda c: c.read_input_registers(0, count=1, device_id=1).registers
            )
            assert registers == [1]  # the fourth connection is served...
            assert await streams[2].receive_some(512) == b""  # ...the quiet one was closed
            for stream in streams[:2]:
                _tid, frame = codec.encode_request(1, Request.ReadInputRegisters(0, 1))
                await stream.send_all(frame)
                assert await stream.receive_some(512)  # the talking ones were not
            for stream in streams:
                await stream.aclose()


DEPARTURE = datetime(2026, 3, 2, 4, 30, tzinfo=UTC)
NEEDS = 4100 + 2 * 6
"""cp-2#1's session registers (the third connector)."""


def words(value: int) -> list[int]:
    """A u32 as two registers, high word first."""
    return [value >> 16, value & 0xFFFF]


async def test_a_fleet_system_writes_a_session_need_with_pymodbus() -> None:
    commands = RecordingCommands()
    with trio.fail_after(10):
        async with running_server(commands=commands) as server:
            epoch = int(DEPARTURE.timestamp())
            # The departure alone is held, not yet a need.
            written = await in_thread(
                server.port, lambda c: c.write_registers(NEEDS + 2, words(epoch), device_id=1)
            )
            assert not written.isError()
            await trio.testing.wait_all_tasks_blocked()
            assert commands.calls == []
            # 180.5 kWh, the departure and a 125 A EV maximum, in one write.
            need = [*words(1805), *words(epoch), 1250]
            written = await in_thread(
                server.port, lambda c: c.write_registers(NEEDS, need, device_id=1)
            )
            assert not written.isError()
            await trio.testing.wait_all_tasks_blocked()
            assert commands.calls == [("session", "cp-2#1", "180.5", str(DEPARTURE), "max 125 A")]
            held = await in_thread(
                server.port, lambda c: c.read_holding_registers(NEEDS, count=5, device_id=1)
            )
            assert held.registers == need  # as written
            # How it goes, from the snapshot: input registers 13-19 of the connector block.
            state = server.hub.latest
            assert state is not None
            going = connector(
                "cp-2#1",
                energy_kwh=20.25,
                session=SessionView(
                    energy_kwh=20.25,
                    needed_kwh=180.5,
                    departure=DEPARTURE,
                    shortfall_kwh=12.5,
                    at_risk=True,
                ),
            )
            server.hub.publish(state.model_copy(update={"connectors": (going,)}))
            going_registers = await in_thread(
                server.port, lambda c: c.read_input_registers(2140 + 13, count=7, device_id=1)
            )
            assert going_registers.registers == [
                1,  # at risk
                *words(180_500),  # needed in all, Wh
                *words(epoch),
                *words(12_500),  # short, Wh
            ]
            # Not available as the energy takes the need away.
            await in_thread(
                server.port, lambda c: c.write_registers(NEEDS, [0xFFFF, 0xFFFF], device_id=1)
            )
            await trio.testing.wait_all_tasks_blocked()
            assert commands.calls[-1] == ("session", "cp-2#1", "None", str(DEPARTURE), "max 125 A")


async def test_session_need_writes_that_cannot_be_taken_are_refused() -> None:
    commands = RecordingCommands()
    with trio.fail_after(10):
        async with running_server(commands=commands) as server:
            half = await in_thread(server.port, lambda c: c.write_register(NEEDS, 1, device_id=1))
            assert half.isError()
            assert half.exception_code == ExceptionCode.ILLEGAL_DATA_ADDRESS
            too_much = await in_thread(
                server.port, lambda c: c.write_registers(NEEDS + 4, [20_000], device_id=1)
            )
            assert too_much.exception_code == ExceptionCode.ILLEGAL_DATA_VALUE
        async with running_server() as server:  # no control loop to take needs
            refused = await in_thread(
                server.port, lambda c: c.write_registers(NEEDS, words(100), device_id=1)
            )
            assert refused.exception_code == ExceptionCode.ILLEGAL_FUNCTION
    assert commands.calls == []


async def test_mbpoll_writes_a_session_need_as_32_bit_integers(mbpoll: Mbpoll) -> None:
    commands = RecordingCommands()
    epoch = int(DEPARTURE.timestamp())
    with trio.fail_after(20):
        async with running_server(commands=commands) as server:
            # A PLC's two 32-bit integers, high word first (-B): 42.0 kWh, the departure.
            args = ("-t", "4:int", "-B", "-r", str(NEEDS), "127.0.0.1", "420", str(epoch))
            write = await mbpoll(server.port, *args)
            assert write.returncode == 0, write.stdout + write.stderr
            await trio.testing.wait_all_tasks_blocked()
            assert commands.calls == [("session", "cp-2#1", "42.0", str(DEPARTURE))]
            read = await mbpoll(
                server.port, "-t", "4:int", "-B", "-r", str(NEEDS), "-c", "2", "127.0.0.1"
            )
            assert read.returncode == 0, read.stderr
            values = dict(re.findall(rb"\[(\d+)\]:\s+(-?\d+)", read.stdout))
            assert values[str(NEEDS).encode()] == b"420"
            assert values[str(NEEDS + 2).encode()] == str(epoch).encode()


async def test_a_need_written_over_modbus_is_planned_for_the_session_on_the_connector() -> None:
    site = PlannedSite.build(SimSite.build())
    planner = site.planner
    planner.horizon.deadlines.wall_offset_s = DEPARTURE.timestamp() - 3600  # it leaves in 1 h
    site.run(10)  # the sessions are seen
    commands = SiteCommands(planner, {}, planner.events)
    config = ModbusServer.model_validate(
        {"host": "127.0.0.1", "port": 0, "unit": 1, "allow_writes_from": ["127.0.0.1"]}
    )
    offset = SiteLayout.from_site(planner.site).connectors.index("cp-2#1") * 6
    index = planner.allocator.connector_index(("cp-2", 1))
    before = planner.horizon.deadlines.status(index, site.now).energy_kwh
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            serve = partial(
                serve_modbus, config, planner.site, StateHub(), planner.limits, commands=commands
            )
            port = await nursery.start(serve)
            need = [*words(150), *words(int(DEPARTURE.timestamp())), 160]  # 15 kWh, 16 A
            written = await in_thread(port, lambda c: c.write_registers(4100 + offset, need))
            assert not written.isError()
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
    status = planner.horizon.deadlines.status(index, site.now)
    assert status.needed_kwh == pytest.approx(before + 15.0)
    assert status.departure == DEPARTURE.timestamp()
    assert status.ev_max_a == 16.0
    site.run(60)  # 15 kWh in the hour at 16 A (11 kW) leaves no slack: planned now
    assert planner.horizon.deadlines.status(index, site.now).planned_now_kw > 0
