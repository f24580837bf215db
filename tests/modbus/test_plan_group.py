"""Many devices' read plans from one task (`read_plans`) against pymodbus and faulty devices:
the same values, errors and recoveries as each device's own `read_plan`."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from hubgate._core import Field, ReadPlan
from hubgate.modbus import plan_group
from hubgate.modbus.codec import FieldValue
from hubgate.modbus.errors import ModbusExceptionError, ModbusTimeoutError
from hubgate.modbus.master import ModbusDevice
from hubgate.modbus.plan_group import read_plans
from hubgate.modbus.rtu_master import RtuMaster
from hubgate.modbus.tcp_master import TcpMaster, open_tcp_master
from tests.support.modbus_faults import (
    FIRST_ANSWER_FAULTS,
    REGISTERS,
    Behaviour,
    answer,
    answers_pairs_reversed,
    late,
    serve_faulty_device,
    silent,
)
from tests.support.modbus_peers import HOLDING, RunningServer
from tests.support.wait import wait_until

PLAN = ReadPlan([Field(a) for a in range(10, 14)] + [Field(20, "u32")])
"""Two requests: registers 10-13, and 20-21 as one u32."""


def expected(registers: list[int]) -> list[object]:
    return [*registers[10:14], registers[20] << 16 | registers[21]]


async def opened(master: TcpMaster, unit: int = 1, max_in_flight: int = 1) -> ModbusDevice:
    """A device on `master` with its connection open (the group reads open ones only)."""
    device = ModbusDevice(master, unit, max_in_flight)
    await master._connect(trio.current_time() + 1, device.stats)
    return device


async def test_many_devices_and_a_pymodbus_gateway_read_in_one_group(
    pymodbus_tcp: RunningServer,
) -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            ports = [await nursery.start(serve_faulty_device, answer) for _ in range(20)]
            masters = [TcpMaster("127.0.0.1", port) for port in ports]
            gateway = TcpMaster("127.0.0.1", pymodbus_tcp.port)
            devices = [await opened(m) for m in masters]
            one = await opened(gateway, 1)
            two = ModbusDevice(gateway, 2)  # behind the same connection: read after unit 1
            late_master = TcpMaster("127.0.0.1", ports[0])  # not connected: read alone
            reads = [(d, PLAN) for d in [*devices, one, two, ModbusDevice(late_master, 1)]]
            for _ in range(3):
                outcomes = await read_plans(reads, trio.current_time() + 5)
                assert outcomes[:20] == [expected(REGISTERS)] * 20
                assert outcomes[20:] == [
                    expected(HOLDING),
                    expected([v * 10 for v in HOLDING]),
                    expected(REGISTERS),
                ]
            assert devices[3].stats.ok == 3 * 2
            assert gateway.connections_opened == 1
            for master in [*masters, gateway, late_master]:
                await master.aclose()
            nursery.cancel_scope.cancel()


async def test_plans_behind_one_connection_are_read_in_the_group_one_after_another(
    pymodbus_tcp: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A charger's connectors behind one socket: each next plan starts in the group once the
    one before it ended, not in a task of its own (the connection's `read_plan`)."""

    async def alone(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("read alone")

    with trio.fail_after(10):
        async with open_tcp_master("127.0.0.1", pymodbus_tcp.port) as gateway:
            one = await opened(gateway, 1)
            two = ModbusDevice(gateway, 2)
            monkeypatch.setattr(gateway, "read_plan", alone)
            reads = [(one, PLAN), (two, PLAN), (one, PLAN)]
            outcomes = await read_plans(reads, trio.current_time() + 5)
            tenfold = expected([v * 10 for v in HOLDING])
            assert outcomes == [expected(HOLDING), tenfold, expected(HOLDING)]
            assert (one.stats.ok, two.stats.ok) == (2 * 2, 2)


LOSES_THE_CONNECTION = {"a connection closed mid-frame", "a connection reset", "garbage"}
"""`FIRST_ANSWER_FAULTS` after which the retry needs a new connection (read alone)."""
TIMES_OUT = {"a late answer", "a wrong transaction id"}
"""`FIRST_ANSWER_FAULTS` seen as a timeout (the others at once: a connection closed right
after half a frame too, its end of file read with the half)."""


@FIRST_ANSWER_FAULTS
async def test_a_fault_in_the_group_is_retried_in_the_group_or_alone(
    behaviour: Behaviour, fault: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A retry goes in the group while the connection stays open, else alone (connecting
    anew)."""
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            faulty_port = await nursery.start(serve_faulty_device, behaviour)
            healthy_port = await nursery.start(serve_faulty_device, answer)
            async with (
                open_tcp_master("127.0.0.1", faulty_port, timeout_s=0.3) as faulty_link,
                open_tcp_master("127.0.0.1", healthy_port) as healthy_link,
            ):
                faulty, healthy = await opened(faulty_link), await opened(healthy_link)
                alone: list[object] = []
                read_plan = faulty_link.read_plan

                async def counted(*args: Any, **kwargs: Any) -> list[FieldValue]:
                    alone.append(args)
                    return await read_plan(*args, **kwargs)

                monkeypatch.setattr(faulty_link, "read_plan", counted)
                outcomes = await read_plans(
                    [(faulty, PLAN), (healthy, PLAN)], trio.current_time() + 5
                )
                assert outcomes == [expected(REGISTERS)] * 2, fault
                assert len(alone) == (fault in LOSES_THE_CONNECTION), fault
                assert faulty.stats.timeouts == (fault in TIMES_OUT), fault
                assert faulty.stats.ok == 2
                assert faulty.stats.requests > 2  # the group's failed attempt counts
                assert healthy.stats.requests == healthy.stats.ok == 2
            nursery.cancel_scope.cancel()


async def test_a_timed_out_plan_is_retried_in_the_group_before_the_next_on_its_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two units behind one connection; the first's first answer comes after its timeout:
    it is read again in the group, then the second unit's plan, none of them alone."""

    async def alone(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("read alone")

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_faulty_device, late(0.45))
            async with open_tcp_master("127.0.0.1", port, timeout_s=0.3) as link:
                one, two = await opened(link, 1), ModbusDevice(link, 2)
                monkeypatch.setattr(link, "read_plan", alone)
                reads = [(one, PLAN), (two, PLAN)]
                assert await read_plans(reads, trio.current_time() + 5) == [expected(REGISTERS)] * 2
                assert (one.stats.timeouts, one.stats.ok, two.stats.ok) == (1, 2, 2)
            nursery.cancel_scope.cancel()


async def test_an_exception_is_the_outcome_and_a_silent_device_times_out(
    pymodbus_tcp: RunningServer,
) -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_faulty_device, silent)
            async with (
                open_tcp_master("127.0.0.1", pymodbus_tcp.port) as gateway,
                open_tcp_master("127.0.0.1", port, timeout_s=0.2, retries=1) as dead_link,
            ):
                device, dead = await opened(gateway), await opened(dead_link)
                bad = ReadPlan([Field(0), Field(5000)])
                start = trio.current_time()
                outcomes = await read_plans([(device, bad), (dead, PLAN)], start + 5)
                assert isinstance(outcomes[0], ModbusExceptionError)
                assert (outcomes[0].function, outcomes[0].code) == (3, 2)
                # a timeout, not None: each round trip's own deadline ended it, not the
                # group's (5 s); the group's attempt and its retry (retries=1) both did
                assert isinstance(outcomes[1], ModbusTimeoutError)
                assert dead.stats.timeouts == dead.stats.requests == 2
            nursery.cancel_scope.cancel()


async def test_the_deadline_leaves_no_outcome_and_the_late_answer_is_a_stray() -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_faulty_device, late(0.3))
            async with open_tcp_master("127.0.0.1", port, timeout_s=2) as link:
                device = await opened(link)
                # None, neither values nor a timeout: the group's deadline (0.1 s) ended the
                # read, before the answer (0.3 s) and the round trip's timeout (2 s)
                assert await read_plans([(device, PLAN)], trio.current_time() + 0.1) == [None]
                connection = link._connection
                assert connection is not None
                assert connection.codec.pending == 0
                assert await device.read_plan(PLAN) == expected(REGISTERS)
                assert link.stray_frames >= 1
            nursery.cancel_scope.cancel()


async def test_a_pipelining_device_is_read_with_its_requests_in_flight_together() -> None:
    plan = ReadPlan([Field(a) for b in range(4) for a in range(b * 10, b * 10 + 3)])
    assert len(plan.requests) == 4
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_faulty_device, answers_pairs_reversed())
            async with open_tcp_master("127.0.0.1", port) as link:
                device = await opened(link, max_in_flight=2)
                outcomes = await read_plans([(device, plan)], trio.current_time() + 5)
                assert outcomes == [
                    [REGISTERS[a] for b in range(4) for a in range(b * 10, b * 10 + 3)]
                ]
                assert device.stats.ok == 4
            nursery.cancel_scope.cancel()


async def test_a_device_that_does_not_pipeline_falls_back_in_the_group(
    pymodbus_tcp: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    # pymodbus 3.16 answers only the first of the requests that arrive in one segment.
    plan = ReadPlan([Field(a) for b in range(3) for a in range(b * 10, b * 10 + 2)])
    with trio.fail_after(10):
        async with open_tcp_master("127.0.0.1", pymodbus_tcp.port, timeout_s=0.3) as gateway:
            device = await opened(gateway, max_in_flight=3)
            wanted = [HOLDING[a] for b in range(3) for a in range(b * 10, b * 10 + 2)]
            assert await read_plans([(device, plan)], trio.current_time() + 5) == [wanted]
            assert "answered only 1 of its pipelined requests" in caplog.text
            assert device.stats.timeouts == 1
            assert await read_plans([(device, plan)], trio.current_time() + 5) == [wanted]
            assert (device.stats.timeouts, device.stats.ok) == (1, 6)


async def test_out_of_descriptors_for_the_set_every_device_reads_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_descriptor(*_args: object) -> None:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(plan_group, "PlanGroup", no_descriptor)
    monkeypatch.setattr(plan_group, "_IDLE", [])
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_faulty_device, answer)
            async with open_tcp_master("127.0.0.1", port) as link:
                device = await opened(link)
                outcomes = await read_plans([(device, PLAN)], trio.current_time() + 5)
                assert outcomes == [expected(REGISTERS)]
            nursery.cancel_scope.cancel()


async def test_a_device_whose_read_raises_is_its_own_failure_not_the_groups() -> None:
    """An RTU device with unit 0 (the site file allows it) fails its read with a ValueError:
    that is its outcome, and the device beside it is still read."""

    async def never_opened() -> trio.abc.Stream:
        raise AssertionError("unit 0 is refused before the line is opened")

    broadcast = ModbusDevice(RtuMaster("/dev/ttyUSB0", never_opened, gap_s=0.002), 0)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_faulty_device, answer)
            async with open_tcp_master("127.0.0.1", port) as link:
                device = await opened(link)
                outcomes = await read_plans(
                    [(broadcast, PLAN), (device, PLAN)], trio.current_time() + 5
                )
            nursery.cancel_scope.cancel()
    assert isinstance(outcomes[0], ValueError)
    assert outcomes[1] == expected(REGISTERS)


async def test_a_read_in_the_group_ends_its_turn_and_hands_it_to_a_waiting_request() -> None:
    """A plan that ends with its values ends its connection's turn in the group's Rust
    call, counted; one that ends while a request waits for the connection hands the turn
    over to it (its end goes through Python)."""
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_faulty_device, late(0.2))
            async with open_tcp_master("127.0.0.1", port) as link:
                device = await opened(link)
                got: list[object] = []

                async def request_meanwhile() -> None:
                    await trio.sleep(0.05)  # the group's plan holds the turn
                    assert link._turn.busy
                    got.append(await device.read_registers(0, 2))

                async def look() -> None:
                    await trio.sleep(0.1)
                    waiting.append(link._turn.waiting)

                waiting: list[int] = []
                nursery.start_soon(request_meanwhile)
                nursery.start_soon(look)
                outcomes = await read_plans([(device, PLAN)], trio.current_time() + 5)
                assert outcomes == [expected(REGISTERS)]
                await wait_until(lambda: got, "the request that waited")
                assert got == [REGISTERS[:2]]
                assert waiting == [1]  # the request waited for the plan's turn
                # the two requests of the plan and the one that waited
                assert device.stats.ok == device.stats.requests == 3
                assert not link._turn.busy
                assert link._turn.waiting == 0
                # now nobody waits: the plan's end (counted, turn ended) is the group's
                assert await read_plans([(device, PLAN)], trio.current_time() + 5) == [
                    expected(REGISTERS)
                ]
                assert device.stats.ok == device.stats.requests == 5
                assert not link._turn.busy
            nursery.cancel_scope.cancel()
