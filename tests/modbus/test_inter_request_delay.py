"""A device that needs a pause between requests (its profile's `inter_request_delay_ms`)
gets it on every link: Modbus TCP, a group read, RTU on a serial line, RTU over TCP.

Timing to the instant on Trio's MockClock (devices in memory) and with time as an input
(`hubgate._core.PlanGroup`); against pymodbus peers that record when each request arrived and each
response left (`PduTimes`), the pause is a lower bound on the peer's own clock.
"""

from __future__ import annotations

import itertools
import select
import socket
from collections.abc import Iterator

import pytest
import trio
import trio.testing
from pymodbus.framer import FramerType

from hubgate._core import (
    Field,
    PlanGroup,
    ReadPlan,
    Request,
    RequestReceived,
    Response,
    TcpServerCodec,
)
from hubgate.config.model import Parity, SerialLine
from hubgate.modbus.master import ModbusDevice
from hubgate.modbus.plan_flight import end_flight
from hubgate.modbus.plan_group import read_plans
from hubgate.modbus.rtu_master import open_rtu_master, open_rtu_over_tcp_master
from hubgate.modbus.socket_link import SocketLink
from hubgate.modbus.tcp_master import TcpMaster, open_tcp_master
from tests.support.modbus_faults import REGISTERS, MemoryDevices, answer_frame
from tests.support.modbus_peers import HOLDING, PduTimes, pymodbus_server, socat_pty_pair

PORT = 502
DELAY_S = 0.1
PLAN = ReadPlan([Field(a) for a in (0, 1, 5, 6, 10, 11)])
"""Three requests (the planner bridges no gap of three registers): 0-1, 5-6, 10-11."""


def values(registers: list[int]) -> list[object]:
    return [registers[a] for a in (0, 1, 5, 6, 10, 11)]


class Recorder:
    """A device in memory that answers at once, noting when each request arrived (Trio's
    clock) and its unit."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, int]] = []

    async def __call__(self, _n: int, event: RequestReceived, stream: trio.abc.Stream) -> None:
        self.arrivals.append((trio.current_time(), event.unit))
        if isinstance(event.request, Request.ReadHoldingRegisters):
            await stream.send_all(answer_frame(event))
        else:
            response = Response.WriteSingleRegister(0, 1)
            await stream.send_all(
                TcpServerCodec.encode_response(event.transaction_id, event.unit, response)
            )


async def test_each_request_waits_for_the_pause_since_the_last_exchange(
    autojump_clock: trio.testing.MockClock,
) -> None:
    recorder = Recorder()
    async with trio.open_nursery() as nursery:
        devices = MemoryDevices(nursery)
        devices.serve(PORT, recorder)
        async with open_tcp_master("device", PORT, connect=devices.connect) as master:
            slow = ModbusDevice(master, 1, max_in_flight=4, delay_s=DELAY_S)
            other = ModbusDevice(master, 2)  # a unit behind the same gateway, no pause
            start = trio.current_time()
            assert await slow.read_plan(PLAN) == values(REGISTERS)  # not pipelined
            assert await other.read_registers(0, 1) == REGISTERS[:1]
            await slow.write_registers(0, [1])
            assert await slow.read_registers(3, 2) == REGISTERS[3:5]
        nursery.cancel_scope.cancel()
    times = [round(at - start, 9) for at, _ in recorder.arrivals]
    # The first request goes at once (nothing before it); then a pause before each
    # request to unit 1, counted from the exchange before it, unit 2's included.
    assert times == [0.0, 0.1, 0.2, 0.2, 0.3, 0.4]
    assert [unit for _, unit in recorder.arrivals] == [1, 1, 1, 2, 1, 1]
    worst = slow.stats.percentile_s(1.0)
    assert worst is not None
    assert worst < 0.01  # the pauses are not latency


async def test_the_pause_does_not_count_against_the_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    arrivals: list[float] = []

    async def slow_answer(_n: int, event: RequestReceived, stream: trio.abc.Stream) -> None:
        arrivals.append(trio.current_time())
        await trio.sleep(0.25)
        await stream.send_all(answer_frame(event))

    async with trio.open_nursery() as nursery:
        devices = MemoryDevices(nursery)
        devices.serve(PORT, slow_answer)
        async with open_tcp_master(
            "device", PORT, timeout_s=0.3, retries=0, connect=devices.connect
        ) as master:
            device = ModbusDevice(master, 1, delay_s=0.2)
            assert await device.read_plan(PLAN) == values(REGISTERS)
            assert await device.read_registers(0, 2) == REGISTERS[:2]
        nursery.cancel_scope.cancel()
    gaps = [round(b - a, 9) for a, b in itertools.pairwise(arrivals)]
    assert gaps == [0.45] * 3  # answer after 0.25 s, then the 0.2 s pause


@pytest.fixture
def loopback_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected TCP pair on loopback: the master's end and the device's."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        master_end = socket.create_connection(listener.getsockname())
        device_end, _ = listener.accept()
    device_end.settimeout(5)
    yield master_end, device_end
    master_end.close()
    device_end.close()


def answer_all(device_end: socket.socket, codec: TcpServerCodec) -> int:
    """Answer every request that has arrived; returns how many there were."""
    device_end.setblocking(False)
    try:
        data = device_end.recv(4096)
    except BlockingIOError:
        return 0
    finally:
        device_end.setblocking(True)
    codec.receive_data(data)
    answered = 0
    while (event := codec.next_event()) is not None:
        assert isinstance(event, RequestReceived)
        device_end.sendall(answer_frame(event))
        answered += 1
    return answered


def wait_readable(sock: socket.socket) -> None:
    assert select.select([sock], [], [], 5)[0], "nothing arrived"


def step(group: PlanGroup, master: TcpMaster, now: float) -> list[object]:
    """The group's step at `now` (time is an input): the outcomes of the plans (to unit 1)
    that ended, made as `read_plans` makes them."""
    return [
        value if exchange is None else end_flight(master, 1, exchange, value, started, now, DELAY_S)
        for _, exchange, value, started in group.step(now)
    ]


async def paused_device(master_end: socket.socket) -> tuple[TcpMaster, ModbusDevice]:
    """A master connected over `master_end` and a device behind it that needs `DELAY_S`."""

    async def connect(_host: str, _port: int) -> SocketLink:
        return SocketLink(master_end)

    master = TcpMaster("device", PORT, timeout_s=1.0, connect=connect)
    device = ModbusDevice(master, 1, delay_s=DELAY_S)
    await master._connect(trio.current_time() + 1, device.stats)
    return master, device


async def test_a_plan_in_flight_holds_each_request_until_its_pause_ends(
    loopback_pair: tuple[socket.socket, socket.socket],
) -> None:
    master_end, device_end = loopback_pair
    master, device = await paused_device(master_end)
    codec = TcpServerCodec()
    t = 1000.0  # time is an input: the plan never reads a clock
    master._turn.quiet_since = t  # an exchange on the connection just ended
    group = PlanGroup()
    assert master.start_plan(group, 0, 1, PLAN, 4, t, DELAY_S) is True  # in flight
    assert group.next_deadline == t + DELAY_S  # held, not sent
    assert answer_all(device_end, codec) == 0
    assert not step(group, master, t + DELAY_S)
    assert group.next_deadline == t + DELAY_S + 1.0  # sent: its round trip's timeout
    wait_readable(device_end)
    assert answer_all(device_end, codec) == 1  # one at a time: no pipelining
    wait_readable(master_end)
    assert not step(group, master, t + 0.15)  # the answer: the next request waits again
    assert group.next_deadline == t + 0.15 + DELAY_S
    assert answer_all(device_end, codec) == 0
    assert not step(group, master, t + 0.25)
    wait_readable(device_end)
    assert answer_all(device_end, codec) == 1
    wait_readable(master_end)
    assert not step(group, master, t + 0.27)
    assert not step(group, master, t + 0.37)
    wait_readable(device_end)
    assert answer_all(device_end, codec) == 1
    wait_readable(master_end)
    assert step(group, master, t + 0.4) == [values(REGISTERS)]
    assert master._turn.quiet_since == t + 0.4
    assert not master._turn.busy
    # 3 round trips of 0.05, 0.02 and 0.03 s, without the pauses between them.
    assert device.stats.percentile_s(1.0) == pytest.approx(0.1 / 3, abs=0.001)
    await master.aclose()


async def test_a_stray_frame_during_the_pause_does_not_send_the_held_request(
    loopback_pair: tuple[socket.socket, socket.socket],
) -> None:
    """A late answer arriving while the next request waits for its pause is taken (a
    stray) and the request stays held until the pause ends."""
    master_end, device_end = loopback_pair
    master, _device = await paused_device(master_end)
    codec = TcpServerCodec()
    t = 1000.0
    group = PlanGroup()
    # the connection was quiet: sent
    assert master.start_plan(group, 0, 1, PLAN, 1, t, DELAY_S) is True
    wait_readable(device_end)
    assert answer_all(device_end, codec) == 1
    wait_readable(master_end)
    assert not step(group, master, t + 0.01)  # the answer: the next request is held
    assert group.next_deadline == t + 0.01 + DELAY_S
    device_end.sendall(STRAY)
    wait_readable(master_end)
    assert not step(group, master, t + 0.02)  # the stray is taken, nothing is sent
    assert group.next_deadline == t + 0.01 + DELAY_S
    assert answer_all(device_end, codec) == 0
    for at in (t + 0.11, t + 0.22):  # each held request goes at the end of its pause
        assert not step(group, master, at)
        wait_readable(device_end)
        assert answer_all(device_end, codec) == 1
        wait_readable(master_end)
        ended = step(group, master, at + 0.01)
    assert ended == [values(REGISTERS)]
    assert master.stray_frames == 1
    await master.aclose()


STRAY = bytes.fromhex("beef 0000 0005 01 03 02 0001")
"""An answer to no request of the plan (transaction id 0xBEEF): a late one."""


async def read_then_write(device: ModbusDevice) -> None:
    """The plan (three requests), then a write: four requests, three pauses."""
    assert await device.read_plan(PLAN) == values(HOLDING)
    await device.write_registers(90, [7])


def assert_paced(times: PduTimes, pauses: int) -> None:
    """The peer saw `pauses` gaps between a response and the next request, each at least
    the pause."""
    gaps = times.quiet_gaps()
    assert len(gaps) == pauses
    assert min(gaps) >= DELAY_S


async def test_a_group_read_keeps_the_pause_against_pymodbus() -> None:
    times = PduTimes()
    with (
        trio.fail_after(20),
        pymodbus_server({1: HOLDING}, trace_pdu=times) as paced_peer,
        pymodbus_server({1: HOLDING}) as quick_peer,
    ):
        async with (
            open_tcp_master("127.0.0.1", paced_peer.port) as paced_link,
            open_tcp_master("127.0.0.1", quick_peer.port) as quick_link,
        ):
            slow = ModbusDevice(paced_link, 1, max_in_flight=4, delay_s=DELAY_S)
            quick = ModbusDevice(quick_link, 1)
            await slow.read_registers(0, 1)  # both connections open: both read in the group
            await quick.read_registers(0, 1)
            for _ in range(2):
                started = trio.current_time()
                outcomes = await read_plans([(slow, PLAN), (quick, PLAN)], trio.current_time() + 10)
                assert outcomes == [values(HOLDING)] * 2
                # The pauses before the 2nd and 3rd requests: the 1st counts from the last
                # exchange, which may end just before `started` (the peer sees all three).
                assert trio.current_time() - started >= 2 * DELAY_S
    assert_paced(times, 2 * 3)


async def test_tcp_requests_reach_pymodbus_after_the_pause() -> None:
    times = PduTimes()
    with trio.fail_after(20), pymodbus_server({1: HOLDING}, trace_pdu=times) as peer:
        async with open_tcp_master("127.0.0.1", peer.port) as master:
            device = ModbusDevice(master, 1, max_in_flight=4, delay_s=DELAY_S)
            await read_then_write(device)
            plans = await read_plans([(device, PLAN)], trio.current_time() + 10)
            assert plans == [values(HOLDING)]
    assert_paced(times, 3 + 1 + 3 - 1)


async def test_rtu_requests_reach_pymodbus_after_the_pause() -> None:
    times = PduTimes()
    with (
        trio.fail_after(20),
        socat_pty_pair() as (master_end, device_end),
        pymodbus_server({1: HOLDING}, serial_port=device_end, trace_pdu=times),
    ):
        line = SerialLine(device=master_end, baud=19200, parity=Parity.NONE)
        async with open_rtu_master(line) as bus:
            await read_then_write(ModbusDevice(bus, 1, delay_s=DELAY_S))
    assert_paced(times, 3)


async def test_rtu_over_tcp_requests_reach_pymodbus_after_the_pause() -> None:
    times = PduTimes()
    with (
        trio.fail_after(20),
        pymodbus_server({4: HOLDING}, framer=FramerType.RTU, trace_pdu=times) as peer,
    ):
        async with open_rtu_over_tcp_master("127.0.0.1", peer.port) as gateway:
            await read_then_write(ModbusDevice(gateway, 4, delay_s=DELAY_S))
    assert_paced(times, 3)
