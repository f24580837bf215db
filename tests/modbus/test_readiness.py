"""The Modbus masters' brief wait for an answer before Trio's (`hubgate.modbus.readiness`):
taken for a socket that answers quickly, bounded, and never keeping another task, a timer, a
thread's call or a deadline waiting for good. The devices here run in threads of their own
(their sockets are not in Trio's set), answering when the test lets them: a wait that kept the
process's other work waiting would hold the answer back until the read timed out."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import trio
import trio.testing

from hubgate._core import Field, ReadPlan, RequestReceived, TcpServerCodec, TrioRun, mark_pass
from hubgate.modbus.errors import ModbusTimeoutError
from hubgate.modbus.master import ModbusDevice
from hubgate.modbus.plan_group import read_plans
from hubgate.modbus.readiness import RUN, SLICE_S, Readable, public_facts
from hubgate.modbus.tcp_master import open_tcp_master
from tests.support.modbus_faults import REGISTERS, answer_frame
from tests.support.wait import wait_until

PUBLIC = TrioRun(None, None, public_facts)
"""The run's facts by Trio's public calls alone (where the runner is not as expected)."""

Hook = Callable[[int], bool]
"""Called in the device's thread with the request's number (1-based) before it answers;
False: no answer to this request."""


@contextmanager
def thread_device(hook: Hook = lambda _n: True) -> Iterator[int]:
    """A Modbus TCP device served by a plain thread (one connection at a time); yields its
    port. It answers register reads from `REGISTERS` once `hook` returns True."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        requests = 0
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            codec = TcpServerCodec()
            with conn:
                while data := conn.recv(4096):
                    codec.receive_data(data)
                    while (event := codec.next_event()) is not None:
                        assert isinstance(event, RequestReceived)
                        requests += 1
                        if hook(requests):
                            conn.sendall(answer_frame(event))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.shutdown(socket.SHUT_RDWR)  # wakes the accept (closing it would not)
        listener.close()
        thread.join(5)


@contextmanager
def socket_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    with ours, theirs:
        yield ours, theirs


async def test_an_answer_that_is_there_is_taken_without_the_scheduler() -> None:
    """Right after a wait through Trio's scheduler, the next answers are taken in brief
    blocks (on a machine too loaded to run this task within the slice, a wait goes through
    the scheduler again: retried a bounded number of times)."""
    with socket_pair() as (ours, theirs), trio.fail_after(10):
        readable = Readable(ours)
        for _ in range(50):
            theirs.send(b"x")
            assert await readable.by(trio.current_time() + 5)
            assert ours.recv(16) == b"x"
            if readable.brief_answers:
                break
        assert readable.brief_answers


async def test_a_slow_socket_and_a_long_stretch_are_waited_for_in_trio() -> None:
    """An answer is there, yet it is left to Trio (None) when the socket's answers took
    longer than the slice lately, or when the other tasks' turn is due; a quick socket's
    turn through the scheduler is a checkpoint, then a brief block again."""
    with socket_pair() as (ours, theirs), trio.fail_after(10):
        readable = Readable(ours)
        theirs.send(b"x")
        readable.answer_s = SLICE_S  # its answers took longer than the slice lately
        assert readable.briefly(trio.current_time() + 5) is None
        assert await readable.in_trio(trio.current_time() + 5)  # Trio's wait_readable
        assert readable.brief_answers == 0
        readable.answer_s = 0.0
        await trio.sleep(SLICE_S * 2)  # the other tasks' turn is due
        assert readable.briefly(trio.current_time() + 5) is None
        assert readable.brief_answers == 0
        for _ in range(50):  # unless this task was not run for a whole slice meanwhile
            assert await readable.in_trio(trio.current_time() + 5)
            if readable.brief_answers:
                break
            assert ours.recv(16) == b"x"
            theirs.send(b"x")
        assert readable.brief_answers == 1


async def test_no_brief_block_while_another_task_is_runnable() -> None:
    """A task made runnable (here spawned) before the wait is not held up by a block:
    the wait is Trio's at once (a block would have missed: no answer comes)."""
    ran: list[int] = []

    async def helper() -> None:
        ran.append(1)

    with socket_pair() as (ours, theirs), trio.fail_after(10):
        readable = Readable(ours)
        async with trio.open_nursery() as nursery:
            for n in range(1, 21):  # each in a fresh slice, unless this task was not run
                theirs.send(b"x")
                assert await readable.in_trio(trio.current_time() + 5)
                assert ours.recv(16) == b"x"
                nursery.start_soon(helper)  # runnable from now on
                assert readable.briefly(trio.current_time() + 5) is None
                assert readable.miss_rate == 0.0  # no block was taken
                await trio.testing.wait_all_tasks_blocked()
                assert len(ran) == n


async def test_the_run_facts_are_read_from_the_runner_as_trios_public_calls_give_them() -> None:
    """The run queue, the clock, the first deadline and cancellation are read from Trio's
    runner (not public), so they are checked against the public calls (the fallback)."""
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            assert RUN.facts()[3] == PUBLIC.facts()[3] == 0
            for _ in range(3):
                nursery.start_soon(trio.sleep, 0)
            assert RUN.facts()[3] == PUBLIC.facts()[3] == 3
            await trio.testing.wait_all_tasks_blocked()
            with trio.move_on_after(7) as scope:
                now, timer, cancelled, runnable = RUN.facts()
                public = PUBLIC.facts()
                assert now <= public[0] <= now + 0.001
                assert abs(now - trio.current_time()) < 0.001
                assert timer == pytest.approx(scope.deadline, abs=0.001)
                assert public[1] == pytest.approx(scope.deadline, abs=0.001)
                assert (cancelled, runnable) == public[2:] == (False, 0)
                scope.deadline += 1  # the heap's entry is stale now: the runner prunes it
                assert RUN.facts()[1] == pytest.approx(scope.deadline, abs=0.001)
                scope.cancel()
                assert RUN.facts()[2]
                assert PUBLIC.facts()[2]
                await trio.lowlevel.checkpoint()
            assert scope.cancelled_caught


@pytest.mark.parametrize("run", [RUN, PUBLIC], ids=["runner", "public"])
async def test_no_brief_block_runs_past_another_tasks_timer(run: TrioRun) -> None:
    """Another task's sleep bounds the block (it ends on time, not at the block's or the
    slice's end), read from Trio's runner or from its public statistics; a block cut short
    by it is no miss of the socket."""
    with socket_pair() as (ours, _theirs), trio.fail_after(10):
        readable = Readable(ours, run)
        async with trio.open_nursery() as nursery:
            for _ in range(50):  # on a loaded machine the sleep may be over before it is read
                nursery.start_soon(trio.sleep, 0.002)
                await trio.testing.wait_all_tasks_blocked()
                now, due, _, _ = run.facts()
                if due <= now + 0.002:
                    break
            assert due <= now + 0.002
            mark_pass()  # a fresh slice
            within = readable.window(now + 5, now)
            assert (
                within is None or 0 < within <= due - now + 1e-4
            )  # None: due already (public: clock reads apart)
            assert readable.briefly(trio.current_time() + 5) is None  # no answer comes
            assert readable.miss_rate == 0.0


@pytest.mark.parametrize("run", [RUN, PUBLIC], ids=["runner", "public"])
async def test_an_enclosing_deadline_and_cancellation_bound_the_block(run: TrioRun) -> None:
    """The enclosing cancel scope's deadline is among the run's timers (the block ends by
    it), and a cancelled task gets no block: read from Trio's runner, or from the public
    effective deadline where the runner is not as expected."""
    with socket_pair() as (ours, _theirs), trio.fail_after(10):
        readable = Readable(ours, run)
        with trio.move_on_after(SLICE_S / 4) as scope:  # shorter than the slice
            now = trio.current_time()
            mark_pass()  # a fresh slice
            within = readable.window(now + 5, now)
            bound = trio.current_effective_deadline() - now
            assert within is None or within <= bound + 0.001  # statistics: two clock reads
            assert not run.facts()[2]
            await readable.by(now + 5)  # no answer comes: the scope ends the wait
        assert scope.cancelled_caught
        with trio.CancelScope() as scope:
            scope.cancel()
            assert run.facts()[2]
            mark_pass()
            now = trio.current_time()
            assert readable.window(now + 5, now) is None
            await readable.by(now + 5)  # Trio's wait raises Cancelled
        assert scope.cancelled_caught


async def test_a_peer_served_by_the_same_run_is_waited_for_in_trio() -> None:
    """A peer that can answer only once this thread runs its other tasks (a device
    served by the same Trio run) makes every brief block miss: after a few misses the
    socket is waited for the Trio way, not blocked on for nothing every time."""

    async def echo(theirs: socket.socket) -> None:
        while True:
            await trio.lowlevel.wait_readable(theirs)
            theirs.send(theirs.recv(16))

    with socket_pair() as (ours, theirs), trio.fail_after(10):
        theirs.setblocking(False)
        readable = Readable(ours)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(echo, theirs)
            for _ in range(40):
                ours.send(b"x")
                assert await readable.by(trio.current_time() + 5)
                assert ours.recv(16) == b"x"
            assert readable.miss_rate > 0.5
            caught = readable.brief_answers
            for _ in range(20):  # the answer is there before the wait: no block takes it
                ours.send(b"x")
                await trio.testing.wait_all_tasks_blocked()
                assert await readable.by(trio.current_time() + 5)
                assert ours.recv(16) == b"x"
            assert readable.brief_answers == caught
            nursery.cancel_scope.cancel()


async def test_a_brief_block_ends_at_the_deadline_and_when_cancelled() -> None:
    with socket_pair() as (ours, _theirs), trio.fail_after(10):
        readable = Readable(ours)
        for _ in range(3):
            assert not await readable.by(trio.current_time() + 0.0005)
        with trio.CancelScope() as scope:
            scope.cancel()
            await readable.by(trio.current_time() + 5)
        assert scope.cancelled_caught
        with trio.move_on_after(0.001) as scope:
            await readable.by(trio.current_time() + 5)
        assert scope.cancelled_caught


async def test_tasks_timers_and_thread_calls_run_while_a_read_waits() -> None:
    """The device answers only once a chain of the process's other work ran: its thread
    calls into Trio, then writes to a socket a Trio task waits on, which sleeps on a Trio
    timer and then lets the device answer."""
    token = trio.lowlevel.current_trio_token()
    called = threading.Event()
    release = threading.Event()
    ours, theirs = socket.socketpair()
    ours.setblocking(False)

    def hook(_n: int) -> bool:
        trio.from_thread.run_sync(called.set, trio_token=token)
        theirs.send(b"x")
        return release.wait(5)

    async def relay() -> None:
        await trio.lowlevel.wait_readable(ours)
        await trio.sleep(0.01)
        release.set()

    with thread_device(hook) as port, trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(relay)
            async with open_tcp_master("127.0.0.1", port, timeout_s=4, retries=0) as master:
                assert await ModbusDevice(master, 1).read_registers(0, 4) == REGISTERS[:4]
    assert called.is_set()
    ours.close()
    theirs.close()


async def test_a_task_woken_beside_the_reader_runs_before_the_answer_comes() -> None:
    """The reader and a helper are woken in the same scheduler pass, in either order: the
    device answers only after the helper ran, so a reader that blocked before the helper's
    turn would time out."""
    helped = threading.Event()

    async def helper(go: trio.Event) -> None:
        await go.wait()
        helped.set()

    async def reader(go: trio.Event, device: ModbusDevice) -> None:
        await go.wait()
        assert await device.read_registers(0, 2) == REGISTERS[:2]

    with thread_device(lambda n: n == 1 or helped.wait(5)) as port, trio.fail_after(30):
        async with open_tcp_master("127.0.0.1", port, timeout_s=2, retries=0) as master:
            device = ModbusDevice(master, 1)
            await device.read_registers(0, 1)  # connected (this one needs no help)
            for _ in range(16):  # each pass orders its tasks at random
                helped.clear()
                go = trio.Event()
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(reader, go, device)
                    nursery.start_soon(helper, go)
                    await trio.testing.wait_all_tasks_blocked()
                    go.set()


async def test_a_silent_device_times_out_and_its_late_answer_is_dropped() -> None:
    answer_first = threading.Event()

    def hook(n: int) -> bool:
        return n != 1 or answer_first.wait(5)

    with thread_device(hook) as port, trio.fail_after(10):
        async with open_tcp_master("127.0.0.1", port, timeout_s=0.2, retries=0) as master:
            device = ModbusDevice(master, 1)
            with pytest.raises(ModbusTimeoutError):
                await device.read_registers(0, 3)
            answer_first.set()  # its answer now comes late, before the next request's
            assert await device.read_registers(5, 2) == REGISTERS[5:7]
            assert master.stray_frames == 1
            assert device.stats.timeouts == 1


async def test_an_enclosing_deadline_cuts_a_read_short() -> None:
    with thread_device(lambda _n: False) as port, trio.fail_after(10):
        async with open_tcp_master("127.0.0.1", port, timeout_s=5, retries=0) as master:
            device = ModbusDevice(master, 1)
            with trio.move_on_after(0.1) as scope:
                await device.read_registers(0, 3)
            assert scope.cancelled_caught


async def test_a_late_answer_in_a_group_read_after_its_deadline_is_ignored() -> None:
    """Two devices read together; the first times out in the group while the second is
    still in flight, then its late answer arrives before the second's answer."""
    late_sent = threading.Event()
    let_late = threading.Event()
    let_second = threading.Event()

    def late_hook(n: int) -> bool:
        if n == 2:  # the group's request
            let_late.wait(5)
            late_sent.set()
        return True

    def second_hook(n: int) -> bool:
        return n != 2 or let_second.wait(5)

    plan = ReadPlan([Field(a) for a in range(4)])
    with thread_device(late_hook) as late_port, thread_device(second_hook) as second_port:
        with trio.fail_after(10):
            async with (
                open_tcp_master("127.0.0.1", late_port, timeout_s=0.2) as late_link,
                open_tcp_master("127.0.0.1", second_port, timeout_s=5) as second_link,
            ):
                late, second = ModbusDevice(late_link, 1), ModbusDevice(second_link, 1)
                for device in (late, second):  # connected: both are read in the group
                    await device.read_registers(0, 1)
                outcomes: list[object] = []

                async def read() -> None:
                    outcomes.extend(
                        await read_plans([(late, plan), (second, plan)], trio.current_time() + 5)
                    )

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(read)
                    await wait_until(lambda: late.stats.timeouts, "the group giving up")
                    let_late.set()
                    await trio.to_thread.run_sync(late_sent.wait, 5)
                    let_second.set()
                assert outcomes == [REGISTERS[:4], REGISTERS[:4]]  # the first: retried alone
                assert late_link.stray_frames == 1
