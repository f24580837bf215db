"""A Modbus meter whose read plan takes longer than the cycle's read deadline is read and
trusted: its plan goes on past the deadline (its first read too) and its reading counts in
the next cycle, with the time its plan began; meanwhile the cycle counts it in flight, not
timed out, so its state does not flap between reachable and unreachable; the loop never
takes a half-read plan; once it stops answering it is counted lost within
`meter_stale_s` of its last answer, as one that answers at once.

The meter is a pymodbus server holding an Eastron SDM630's input registers (f32
big-endian; currents at 0x0006-0x000B, phase powers at 0x000C-0x0011, total power at
0x0034, frequency at 0x0046: mbmd's `meters/rs485/sdm.go` opcodes), answering every
request 0.25 s late: the meter's control plan (two requests) takes 0.5 s, its full plan
(three) 0.75 s, against a read deadline of 0.4 s (1 s cycles). It is reached through a
proxy that can stop passing its answers (a device that falls silent, its connection open).
"""

from __future__ import annotations

import struct
import time

import pytest
import trio
from pymodbus.pdu import ModbusPDU

from hubgate.control.cycle import InFlight
from hubgate.control.failsafe import MeterHealth
from hubgate.control.sensors import SiteDevices
from hubgate.devices.model import Reading
from hubgate.devices.profile_driver import driver_for
from hubgate.modbus.master import ModbusDevice
from hubgate.modbus.tcp_master import open_tcp_master
from hubgate.profiles.loader import load_named
from hubgate.profiles.model import Quantity
from tests.support.loop_site import SimSite, running_loop, site_config
from tests.support.modbus_peers import pymodbus_server
from tests.support.wait import wait_cycles

ANSWER_DELAY_S = 0.25
STALE_S = 3.0  # the test site's meter_stale_s
CONTROL = (
    Quantity.CURRENT_L1,
    Quantity.CURRENT_L2,
    Quantity.CURRENT_L3,
    Quantity.POWER_L1,
    Quantity.POWER_L2,
    Quantity.POWER_L3,
    Quantity.POWER_TOTAL,
)


def sdm630_inputs() -> list[int]:
    """10 A and 2300 W on each phase, 6900 W in all, 50 Hz (pymodbus holds the same bank
    as holding and input registers)."""
    registers = [0] * 0x50
    for address, value in {
        0x06: 10.0,
        0x08: 10.0,
        0x0A: 10.0,
        0x0C: 2300.0,
        0x0E: 2300.0,
        0x10: 2300.0,
        0x34: 6900.0,
        0x46: 50.0,
    }.items():
        registers[address : address + 2] = struct.unpack(">HH", struct.pack(">f", value))
    return registers


def late_input_answers(sending: bool, pdu: ModbusPDU) -> ModbusPDU:
    """A pymodbus `trace_pdu`: every input-register answer leaves `ANSWER_DELAY_S` late."""
    if sending and pdu.function_code == 4:
        time.sleep(ANSWER_DELAY_S)  # pymodbus' own thread
    return pdu


class Proxy:
    """Passes a TCP connection on to the device, its answers only while `answering`."""

    def __init__(self, device_port: int) -> None:
        self.device_port = device_port
        self.answering = True
        self.last_answer_at = -float("inf")
        """When it last passed an answer on (Trio's clock)."""

    async def serve(self, *, task_status: trio.TaskStatus[int]) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        task_status.started(listeners[0].socket.getsockname()[1])
        await trio.serve_listeners(self._pass, listeners)

    async def _pass(self, master: trio.SocketStream) -> None:
        async with master, await trio.open_tcp_stream("127.0.0.1", self.device_port) as device:

            async def requests() -> None:
                async for data in master:
                    await device.send_all(data)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(requests)
                async for data in device:
                    await self.answer(master, data)
                nursery.cancel_scope.cancel()

    async def answer(self, master: trio.SocketStream, data: bytes) -> None:
        """Pass the device's `data` on to the master, while `answering`."""
        if self.answering:
            self.last_answer_at = trio.current_time()
            await master.send_all(data)


@pytest.mark.timeout(120)
async def test_a_meter_slower_than_the_read_deadline_is_read_trusted_and_lost_in_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim = SimSite.build()
    with (
        trio.fail_after(100),
        pymodbus_server({1: sdm630_inputs()}, trace_pdu=late_input_answers) as server,
    ):
        async with trio.open_nursery() as nursery:
            proxy = Proxy(server.port)
            port = await nursery.start(proxy.serve)
            async with open_tcp_master("127.0.0.1", port, timeout_s=1.0) as master:
                meter = driver_for(
                    "board-meter", load_named("eastron-sdm630"), ModbusDevice(master, 1)
                )
                devices = SiteDevices(
                    chargers={(c.id, 1): c for c in sim.chargers},
                    meters={"board-meter": meter},
                    grid_operator=sim.box,
                )
                async with running_loop(site_config(), devices) as loop:
                    seen: list[tuple[float, object, MeterHealth]] = []
                    answered: list[bool] = []
                    absorb = loop.planner.absorb
                    watch = loop.planner.meter_watch["board-meter"]

                    def absorbed(readings: dict[str, object], now: float) -> None:
                        absorb(readings, now)
                        seen.append((now, readings.get("meter:board-meter"), watch.health(now)))
                        answered.append(loop.planner.devices.answered["meter:board-meter"])

                    monkeypatch.setattr(loop.planner, "absorb", absorbed)
                    await wait_cycles(
                        lambda: sum(isinstance(r, Reading) for _, r, _ in seen) >= 6,
                        "six readings",
                        loop.stats,
                        30,
                    )
                    readings = [(now, r) for now, r, _ in seen if isinstance(r, Reading)]
                    for now, reading in readings:
                        assert reading.at < now  # read before the cycle that counts it
                        assert all(reading.values.get(q) is not None for q in CONTROL)
                        assert reading.phase_currents() == (10.0, 10.0, 10.0)
                        assert reading.get(Quantity.POWER_TOTAL) == 6900.0
                    ats = [r.at for _, r in readings]
                    assert ats == sorted(set(ats))  # each a new read
                    # Never cut, the first read neither: each cycle a reading or in flight,
                    # and the meter reachable from its first reading on, every cycle.
                    assert all(isinstance(r, Reading | InFlight) for _, r, _ in seen)
                    first = next(i for i, (_, r, _) in enumerate(seen) if isinstance(r, Reading))
                    assert all(answered[first:])
                    # trusted from its first reading on (never lost before: no hysteresis)
                    assert all(health is MeterHealth.FRESH for _, _, health in seen[first:])

                    proxy.answering = False
                    cut = len(seen)
                    await wait_cycles(
                        lambda: seen[-1][2] is MeterHealth.LOST,
                        "the meter lost",
                        loop.stats,
                        10,
                    )
                    for now, _, health in seen[cut:]:
                        if now - proxy.last_answer_at > STALE_S:
                            assert health is MeterHealth.LOST
            nursery.cancel_scope.cancel()
