"""A group read (`read_plans`) whose device answers after the group gave its plan up at
the deadline, while another device's plan is still in flight: the late answer is dropped
(it was a KeyError that ended the whole group read). The devices run in threads of their
own, answering when the test lets them."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import trio

from hubgate._core import Field, ReadPlan, RequestReceived, TcpServerCodec
from hubgate.modbus.master import ModbusDevice
from hubgate.modbus.plan_group import read_plans
from hubgate.modbus.tcp_master import open_tcp_master
from tests.support.modbus_faults import REGISTERS, answer_frame
from tests.support.wait import wait_until

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
