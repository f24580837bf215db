"""Read plans that go on past a read deadline (`PlanReads`): a plan of two requests that
takes longer than the deadline, on a pymodbus TCP device that answers each request late and
on a pymodbus RTU device behind a pseudo-terminal paced at 9600 baud, ends in a later read
with every value and the time it began; cut at the deadline (`read_plans` alone), the same
device is never read. A device that stops answering ends its plan with the timeout error
its round trips give, and a plan half answered hands over no values."""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import partial

import pytest
import trio
from pymodbus.pdu import ModbusPDU

from hubgate._core import Field, ReadPlan, RequestReceived
from hubgate.config.model import Parity, SerialLine
from hubgate.modbus.errors import ModbusTimeoutError
from hubgate.modbus.master import ModbusDevice
from hubgate.modbus.plan_group import read_plans
from hubgate.modbus.plan_reads import Ended, PlanReads
from hubgate.modbus.rtu_master import open_rtu_master
from hubgate.modbus.tcp_master import TcpMaster, open_tcp_master
from tests.support.modbus_faults import answer, serve_faulty_device, silent
from tests.support.modbus_peers import HOLDING, pymodbus_server, socat_pty_pair
from tests.support.wait import wait_until

PLAN = ReadPlan([Field(a) for a in range(40)] + [Field(a) for a in range(60, 100)])
"""Two requests of 40 registers each."""
VALUES = HOLDING[0:40] + HOLDING[60:100]
ANSWER_DELAY_S = 0.15
"""How late the TCP device answers each request: the plan takes 0.3 s."""
DEADLINE_S = 0.2
BAUD = 9600


class Paced:
    """A pymodbus `trace_pdu` that holds each answer back: for `delay_s`, or for the time
    the request and its answer take on a line at `baud` (a pseudo-terminal passes bytes at
    once, whatever its baud rate)."""

    def __init__(self, *, delay_s: float = 0.0, baud: int | None = None) -> None:
        self.delay_s = delay_s
        self.baud = baud
        self.answers = 0

    def __call__(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        if sending:
            delay = self.delay_s
            if self.baud is not None:  # 8 request bytes, 5 + 2 per register answered, 10 bits
                delay = (8 + 5 + 2 * len(pdu.registers)) * 10 / self.baud
            time.sleep(delay)  # pymodbus' own thread: the answer leaves after it
            self.answers += 1
        return pdu


@pytest.fixture
def paced_tcp() -> Iterator[tuple[int, Paced]]:
    """A pymodbus TCP device (unit 1) answering each request `ANSWER_DELAY_S` late."""
    paced = Paced(delay_s=ANSWER_DELAY_S)
    with pymodbus_server({1: HOLDING}, trace_pdu=paced) as server:
        yield server.port, paced


def began_in(ended: Ended, outcome: object, began: float, deadline: float) -> bool:
    """Whether `ended` is `outcome`, its plan begun by the read started at `began`."""
    return ended.outcome == outcome and began <= ended.at <= deadline


def test_the_plan_has_two_requests() -> None:
    assert len(PLAN.requests) == 2


async def test_cut_at_the_deadline_a_slow_device_is_never_read(
    paced_tcp: tuple[int, Paced],
) -> None:
    port, _ = paced_tcp
    with trio.fail_after(10):
        async with open_tcp_master("127.0.0.1", port) as master:
            device = ModbusDevice(master, 1)
            for _ in range(3):
                outcomes = await read_plans([(device, PLAN)], trio.current_time() + DEADLINE_S)
                assert outcomes == [None]
                await trio.sleep(0.3)  # what the rest of a cycle would take


async def test_a_plan_past_the_deadline_ends_in_the_next_read(
    paced_tcp: tuple[int, Paced],
) -> None:
    port, paced = paced_tcp
    reads = PlanReads(give_up_s=3.0)
    with trio.fail_after(10):
        async with open_tcp_master("127.0.0.1", port) as master, trio.open_nursery() as nursery:
            await nursery.start(reads.run)
            device = ModbusDevice(master, 1)
            await device.read_registers(0, 1)  # connected: the plans are read in the group
            ended: dict[str, Ended] = {}
            for _ in range(3):
                began = trio.current_time()
                assert await reads.read({"d": (device, PLAN)}, began + DEADLINE_S) == {}
                assert reads.in_flight == {"d"}  # half read at the deadline: nothing handed
                ended = await reads.read({}, trio.current_time() + 5)  # until it ended
                assert ended.keys() == {"d"}  # every value, read after the plan began
                assert began_in(ended["d"], VALUES, began, began + DEADLINE_S)
                assert reads.in_flight == set()
            assert paced.answers == 1 + 3 * 2
            nursery.cancel_scope.cancel()


async def test_a_read_hands_over_what_ended_since_with_its_own_plans(
    paced_tcp: tuple[int, Paced],
) -> None:
    port, _ = paced_tcp
    reads = PlanReads(give_up_s=3.0)
    with trio.fail_after(10):
        async with (
            open_tcp_master("127.0.0.1", port) as slow_link,
            trio.open_nursery() as nursery,
        ):
            fast_port = await nursery.start(serve_faulty_device, answer)
            await nursery.start(reads.run)
            slow = ModbusDevice(slow_link, 1)
            fast_link = TcpMaster("127.0.0.1", fast_port)
            fast = ModbusDevice(fast_link, 1)
            one = ReadPlan([Field(3)])
            first = trio.current_time()
            ended = await reads.read({"slow": (slow, PLAN), "fast": (fast, one)}, first + 0.1)
            assert ended.keys() == {"fast"}
            assert began_in(ended["fast"], [103], first, first + 0.1)
            with pytest.raises(ValueError, match="already in flight"):
                await reads.read({"slow": (slow, PLAN)}, first + 0.1)
            await wait_until(lambda: not reads.in_flight, "the slow plan ended")
            second = trio.current_time()
            ended = await reads.read({"fast": (fast, one)}, second + 5)
            assert ended.keys() == {"slow", "fast"}
            assert began_in(ended["slow"], VALUES, first, first + 0.1)
            assert began_in(ended["fast"], [103], second, second + 5)
            await fast_link.aclose()
            nursery.cancel_scope.cancel()


@pytest.mark.timeout(30)
async def test_an_rtu_plan_at_9600_baud_ends_in_the_next_read() -> None:
    paced = Paced(baud=BAUD)  # 0.1 s per request: the plan takes 0.2 s
    reads = PlanReads(give_up_s=3.0)
    with (
        trio.fail_after(20),
        socat_pty_pair() as (master_end, device_end),
        pymodbus_server({1: HOLDING}, serial_port=device_end, baud=BAUD, trace_pdu=paced),
    ):
        line = SerialLine(device=master_end, baud=BAUD, parity=Parity.NONE)
        async with open_rtu_master(line, timeout_s=1.0) as bus, trio.open_nursery() as nursery:
            await nursery.start(reads.run)
            device = ModbusDevice(bus, 1)
            for _ in range(3):
                began = trio.current_time()
                assert await reads.read({"meter": (device, PLAN)}, began + 0.15) == {}
                assert reads.in_flight == {"meter"}
                ended = await reads.read({}, trio.current_time() + 5)
                assert ended.keys() == {"meter"}
                assert began_in(ended["meter"], VALUES, began, began + 0.15)
            nursery.cancel_scope.cancel()


async def test_a_silent_device_ends_with_the_timeout_of_its_round_trips() -> None:
    reads = PlanReads(give_up_s=10.0)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_faulty_device, silent)
            await nursery.start(reads.run)
            async with open_tcp_master("127.0.0.1", port, timeout_s=0.3, retries=1) as master:
                device = ModbusDevice(master, 1)
                began = trio.current_time()
                assert await reads.read({"d": (device, PLAN)}, began + DEADLINE_S) == {}
                ended = await reads.read({}, trio.current_time() + 5)  # both attempts timed out
                assert ended.keys() == {"d"}
                assert isinstance(ended["d"].outcome, ModbusTimeoutError)
                assert began <= ended["d"].at <= began + DEADLINE_S
                assert device.stats.timeouts == 2
            nursery.cancel_scope.cancel()


async def test_a_plan_half_answered_hands_over_no_values() -> None:
    async def first_only(n: int, event: RequestReceived, stream: trio.abc.Stream) -> None:
        if n == 1:  # its plans' second requests are never answered
            await answer(n, event, stream)

    reads = PlanReads(give_up_s=10.0)
    plan = ReadPlan([Field(a) for a in range(10)] + [Field(a) for a in range(80, 90)])
    assert len(plan.requests) == 2
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_faulty_device, first_only)
            await nursery.start(reads.run)
            async with open_tcp_master("127.0.0.1", port, timeout_s=0.3, retries=0) as master:
                device = ModbusDevice(master, 1)
                began = trio.current_time()
                ended = await reads.read({"d": (device, plan)}, began + 2)
                assert ended.keys() == {"d"}
                assert isinstance(ended["d"].outcome, ModbusTimeoutError)
            nursery.cancel_scope.cancel()


async def test_a_plan_is_given_up_after_give_up_s(paced_tcp: tuple[int, Paced]) -> None:
    port, _ = paced_tcp
    reads = PlanReads(give_up_s=0.2)
    with trio.fail_after(10):
        async with open_tcp_master("127.0.0.1", port) as master, trio.open_nursery() as nursery:
            await nursery.start(reads.run)
            device = ModbusDevice(master, 1)
            began = trio.current_time()
            assert await reads.read({"d": (device, PLAN)}, began + 0.1) == {}
            ended = await reads.read({}, began + 5)
            assert ended.keys() == {"d"}
            assert began_in(ended["d"], None, began, began + 0.1)
            nursery.cancel_scope.cancel()


async def test_without_run_a_read_cuts_its_plans_at_the_deadline(
    paced_tcp: tuple[int, Paced],
) -> None:
    port, _ = paced_tcp
    reads = PlanReads(give_up_s=3.0)
    with trio.fail_after(10):
        async with open_tcp_master("127.0.0.1", port) as master:
            device = ModbusDevice(master, 1)
            began = trio.current_time()
            ended = await reads.read({"d": (device, PLAN)}, began + 0.1)
            assert ended.keys() == {"d"}
            assert began_in(ended["d"], None, began, began + 0.1)
            assert reads.in_flight == set()


async def test_a_read_alone_goes_on_past_the_deadline_as_a_plan_does(
    paced_tcp: tuple[int, Paced],
) -> None:
    """A read that is not a plan (a device's first read, `alone`) goes on likewise: in
    flight until it ended, handed over with the time it began, its error as its outcome;
    without `run` it is cut at the deadline."""
    port, _ = paced_tcp

    async def failing() -> object:
        raise ModbusTimeoutError("no answer")

    with trio.fail_after(10):
        async with open_tcp_master("127.0.0.1", port) as master, trio.open_nursery() as nursery:
            reads = PlanReads(give_up_s=3.0)
            await nursery.start(reads.run)
            device = ModbusDevice(master, 1)
            first = partial(device.read_plan, PLAN)  # connects, then two requests: 0.3 s
            began = trio.current_time()
            ended = await reads.read({}, began + DEADLINE_S, {"d": first, "bad": failing})
            assert ended.keys() == {"bad"}
            assert isinstance(ended["bad"].outcome, ModbusTimeoutError)
            assert reads.in_flight == {"d"}
            ended = await reads.read({}, trio.current_time() + 5)
            assert ended.keys() == {"d"}
            assert began_in(ended["d"], VALUES, began, began + DEADLINE_S)
            assert reads.in_flight == set()
            nursery.cancel_scope.cancel()
        async with open_tcp_master("127.0.0.1", port) as master:
            first = partial(ModbusDevice(master, 1).read_plan, PLAN)
            began = trio.current_time()
            ended = await PlanReads(give_up_s=3.0).read({}, began + DEADLINE_S, {"d": first})
            assert ended.keys() == {"d"}
            assert began_in(ended["d"], None, began, began + DEADLINE_S)
