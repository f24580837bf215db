"""A battery whose command takes longer than the cycle's command deadline: its command goes
on aside and its late answer is taken (not "no answer"), one command at a time, not sent
again each cycle.

The battery is the demo's (profile sunspec-hybrid-storage: SunSpec model 124's InWRte and
OutWRte in % of WChaMax, its revert timeout, the StorCtl_Mod switch), simulated and served
by pymodbus, reached through a proxy that passes every answer to a write
`WRITE_DELAY_S` late: one command (its writes and read-backs) takes longer than a cycle
against a command deadline of 0.4 s (1 s cycles). The loop's other devices are in memory.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pytest
import trio
import trio.testing

from hubgate.control.sensors import SiteDevices
from hubgate.devices.model import BatteryCommandResult
from hubgate.devices.profile_driver import ProfileDevice, driver_for
from hubgate.devices.storage import BatteryDevice
from hubgate.modbus.master import ModbusDevice
from hubgate.modbus.tcp_master import open_tcp_master
from hubgate.profiles.model import Quantity
from hubgate.sim.modbus_box import serve
from hubgate.sim.simulated_device import SimulatedDevice
from tests.control.test_loop_energy import LIMIT_W, SimBattery, build, running
from tests.control.test_slow_modbus_reads import Proxy
from tests.support.loop_site import SimSite, running_loop, site_config
from tests.support.simulated_devices import PROFILES, FakeClock
from tests.support.wait import wait_cycles

WRITE_DELAY_S = 0.3
WRITES = frozenset({5, 6, 15, 16})
"""Modbus function codes that write."""

BATTERY = """
[battery]
id = "battery"
node = "board"
modbus = { profile = "sunspec-hybrid-storage", host = "127.0.0.1", port = 1507, unit = 1 }
capacity_kwh = 50
max_charge_kw = 5
max_discharge_kw = 5
"""


class LateWrites(Proxy):
    """Passes a TCP connection on to the device, each answer to a write `WRITE_DELAY_S` late
    (the master has one request out at a time)."""

    async def answer(self, master: trio.SocketStream, data: bytes) -> None:
        if len(data) > 7 and data[7] & 0x7F in WRITES:
            await trio.sleep(WRITE_DELAY_S)
        await super().answer(master, data)


class Counted(BatteryDevice):
    """The battery's commands as the loop starts and ends them (time, W, answered)."""

    def __init__(self, driver: ProfileDevice) -> None:
        super().__init__(driver, lease_s=10.0)
        self.started: list[tuple[float, float]] = []
        self.ended: list[tuple[float, BatteryCommandResult]] = []

    async def command(self, power_w: float) -> BatteryCommandResult:
        self.started.append((trio.current_time(), power_w))
        result = await super().command(power_w)
        self.ended.append((trio.current_time(), result))
        return result


@pytest.mark.timeout(90)
async def test_a_battery_answering_after_the_command_deadline_is_commanded_once() -> None:
    profile = PROFILES["sunspec-hybrid-storage"]
    sim = SimulatedDevice(profile, clock=FakeClock())
    sim.set(Quantity.SOC, 50.0)
    sim.set(Quantity.POWER_TOTAL, 0.0)
    sim.set(Quantity.BATTERY_MAX_CHARGE_POWER, 5000.0)
    site = SimSite.build()
    with trio.fail_after(60), serve(sim) as device_port:
        async with trio.open_nursery() as nursery:
            port = await nursery.start(LateWrites(device_port).serve)
            async with open_tcp_master("127.0.0.1", port, timeout_s=5.0) as master:
                driver = driver_for("battery", profile, ModbusDevice(master, sim.unit))
                battery = Counted(driver)
                devices = site.devices()
                devices = SiteDevices(
                    devices.chargers, devices.meters, devices.grid_operator, battery=battery
                )
                async with running_loop(site_config(BATTERY), devices) as loop:
                    await wait_cycles(lambda: battery.ended, "an answer", loop.stats, 20)
                    first = battery.ended[0][0] - battery.started[0][0]
                    for _ in range(3):  # cycles that would send it again
                        await loop.cycle_ready.wait()
                    events = [
                        e.message for e in loop.events.recent if e.subject == "battery:battery"
                    ]
            nursery.cancel_scope.cancel()
    assert first > 0.4  # longer than the command deadline
    assert events == []  # no "command failed (no answer)"
    # one command (its answer taken: the same command is not sent again for half a lease)
    assert [w for _, w in battery.started] == [0.0]
    assert len(battery.ended) == 1


@dataclass
class LateBattery(SimBattery):
    """A battery that takes each command `LANDS_S` after it is written and answers
    `ANSWERS_S` after: a command whose answer the master stops waiting for still lands."""

    landing: list[tuple[float, float]] = field(default_factory=list)

    def advance(self, now: float) -> None:
        for at, power_w in [c for c in self.landing if c[0] <= now]:
            self.landing.remove((at, power_w))
            if power_w != self.command_w:
                self._since = at
            self.command_w = power_w
        super().advance(now)

    async def command(self, power_w: float) -> BatteryCommandResult:
        now = trio.current_time()
        self.commands.append((now, power_w))
        self.landing.append((now + LANDS_S, power_w))
        await trio.sleep(ANSWERS_S)
        self.advance(trio.current_time())
        return BatteryCommandResult(max(-power_w, 0.0), max(power_w, 0.0))


LANDS_S = 2.0
ANSWERS_S = 2.5


async def test_a_charge_not_answered_yet_is_counted_until_a_later_command_lands(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The battery is told to charge 30 kW from the headroom under the 40 kW target; two EVs
    plug in before it answers: the next command is idle, but the charge lands after it was
    sent, and the idle command only after the charge's answer (in turns). The EVs are not
    given the room the charge may take meanwhile: the import stays under the 60 kW limit."""
    site = build(connected=())
    site.battery = battery = LateBattery()
    async with running(site):
        await trio.sleep(0.5)  # the charge is on its way
        assert [w for _, w in battery.commands] == [-30_000.0]
        for charger in site.chargers[:2]:
            charger.connected = True
        await trio.sleep(30)
    assert [w for _, w in battery.commands][:2] == [-30_000.0, 0.0]
    assert max(w for _, w in site.imports) <= LIMIT_W
    starts = [t for t, _ in battery.commands]
    assert all(b - a >= ANSWERS_S - 1e-9 for a, b in itertools.pairwise(starts))  # in turns
