"""Modbus chargers whose fallback current hubgate can set share the failsafe budget like OCPP
ones: under a curtailment, what they fall back to if hubgate stops sums under the limit in
force; a charger whose fallback is fixed on the device counts that first.

The chargers are pymodbus servers holding each profile's registers; what they fall back to
is read from their registers with the vendors' documented meaning (below), not through
hubgate's profiles."""

from __future__ import annotations

import asyncio
import tomllib
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field, replace

import pytest
import trio
from pymodbus.pdu import ModbusPDU

from hubgate.config.model import SiteConfig
from hubgate.control.limits import SITE, Limit, LimitSource
from hubgate.control.loop import ControlLoop
from hubgate.control.sensors import SiteDevices
from hubgate.devices.model import Charger
from hubgate.devices.profile_driver import ProfileCharger, driver_for
from hubgate.modbus.master import ModbusDevice
from hubgate.modbus.tcp_master import open_tcp_master
from hubgate.profiles.loader import load_named
from hubgate.profiles.model import IecState
from tests.support.loop_site import running_loop
from tests.support.modbus_peers import RunningServer, pymodbus_server
from tests.support.toml_tables import failsafe_site, modbus, modbus_charger
from tests.support.wait import wait_cycles

HEIDELBERG_STATE_B = 4
"""Input register 5 = 4: vehicle plugged, no charging request (Heidelberg's table); the
Mennekes' 0x0100 = 2 and the Webasto's 1000 = 1 (evcc's maps) say the same."""


@dataclass(frozen=True)
class Charge:
    """One pymodbus charger: its unit, profile, fallback register and its documented
    meaning (register-maps.md: Heidelberg 262 u16 x0.1 A, 0 = error state / no charging;
    Mennekes AMTRON Compact 2.0s 0x073A u16 A, 0 disabled, 1 pause, 6-32 A; Webasto
    NEXT 2000 u16 A, the safe current, read-only here)."""

    charger_id: str
    unit: int
    profile: str
    fallback_at: int
    fallback_a: Callable[[int], float]
    registers: dict[int, int]
    """What differs from 0 in its register bank (holding and input alike)."""
    size: int
    max_a: int = 32

    def bank(self) -> list[int]:
        values = [0] * self.size
        for address, value in self.registers.items():
            values[address] = value
        return values


def mennekes_a(raw: int) -> float:
    return {0: float("inf"), 1: 0.0}.get(raw, float(raw))  # 0: no fallback at all


def heidelberg(charger_id: str, unit: int) -> Charge:
    registers = {5: HEIDELBERG_STATE_B, 257: 15_000}
    profile = "heidelberg-energy-control"
    return Charge(charger_id, unit, profile, 262, lambda raw: raw / 10, registers, 300, 16)


CHARGERS = (
    Charge("webasto", 255, "webasto-next", 2000, float, {1000: 1, 2000: 6, 2002: 20}, 6010),
    heidelberg("heidelberg-1", 1),
    heidelberg("heidelberg-2", 3),
    Charge("mennekes", 2, "mennekes-amtron-compact-2.0s", 0x073A, mennekes_a, {0x100: 2}, 0x1010),
)


@dataclass
class Writes:
    """A pymodbus `trace_pdu`: the register writes each unit received."""

    seen: list[tuple[int, int, tuple[int, ...]]] = field(default_factory=list)
    """(unit, address, the registers written)."""

    def __call__(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        if not sending and pdu.function_code in (6, 16):
            self.seen.append((pdu.dev_id, pdu.address, tuple(pdu.registers)))
        return pdu

    def to_fallback(self, charge: Charge) -> list[tuple[int, ...]]:
        """What was written to the charger's fallback register, in order."""
        return [
            r for unit, at, r in list(self.seen) if (unit, at) == (charge.unit, charge.fallback_at)
        ]


def site(port: int) -> SiteConfig:
    chargers = "".join(
        modbus_charger(
            c.charger_id,
            "grid",
            modbus(c.profile, port=port, unit=c.unit),
            f"{{ id = 1, max_current_a = {c.max_a} }}",
        )
        for c in CHARGERS
    )
    text = failsafe_site("modbus failsafes", grid_a=63, lease_s=30, chargers=chargers)
    return SiteConfig.model_validate(tomllib.loads(text))


def fallbacks_a(box: RunningServer) -> dict[str, float]:
    """What each charger falls back to, as its registers say."""
    return {
        c.charger_id: c.fallback_a(box.get_registers(c.unit, c.fallback_at, 1)[0]) for c in CHARGERS
    }


@pytest.mark.timeout(90)
async def test_curtailed_modbus_chargers_fall_back_under_the_limit_in_force() -> None:
    writes = Writes()
    devices = {c.unit: c.bank() for c in CHARGERS}
    with trio.fail_after(75), pymodbus_server(devices, trace_pdu=writes) as box:
        config = site(box.port)
        async with open_tcp_master("127.0.0.1", box.port, timeout_s=5.0) as master:
            chargers: dict[tuple[str, int], Charger] = {}
            for c in CHARGERS:
                driver = driver_for(
                    c.charger_id, load_named(c.profile), ModbusDevice(master, c.unit)
                )
                assert isinstance(driver, ProfileCharger)
                chargers[(c.charger_id, 1)] = driver
            devices_ = SiteDevices(chargers=chargers)
            # read-only there: until read, the most its setpoint allows
            assert devices_.fixed_failsafes(6.0) == {("webasto", 1): 32.0}
            async with running_loop(config, devices_) as loop:

                async def settled(want: dict[str, float]) -> bool:
                    return await trio.to_thread.run_sync(fallbacks_a, box) == want

                everyone = dict.fromkeys((c.charger_id for c in CHARGERS), 6.0)
                await wait_cycles(lambda: settled(everyone), "6 A everywhere", loop.stats, 80)
                await wait_for_verified(loop)
                assert devices_.fixed_failsafes(6.0) == {("webasto", 1): 6.0}  # as read
                # 20 A per phase: the webasto's fixed 6 A first, then two 6 A grants, the last
                # (by index) is paused on fallback: Mennekes' 1
                loop.limits.set(
                    SITE,
                    LimitSource.API,
                    Limit(phase_a=(20.0, 20.0, 20.0)),
                    now=trio.current_time(),
                    lease_s=None,
                    origin="test",
                )
                curtailed = everyone | {"mennekes": 0.0}
                await wait_cycles(lambda: settled(curtailed), "the curtailment", loop.stats, 40)
                assert sum(curtailed.values()) <= 20.0
                assert writes.to_fallback(CHARGERS[3])[-1] == (1,)  # pause, not 0 = disabled
                assert set(writes.to_fallback(CHARGERS[1])) == {(60,)}  # 6 A, x0.1 A
                assert writes.to_fallback(CHARGERS[0]) == []  # a fixed safe current is only read
                start = loop.stats.cycles
                await wait_cycles(lambda: loop.stats.cycles > start + 1, "a cycle", loop.stats, 2)
                state = loop.hub.latest
                assert state is not None
                assert sum(c.setpoint_a for c in state.connectors) <= 20.0


async def wait_for_verified(loop: ControlLoop) -> None:
    await wait_cycles(
        lambda: all(
            r.failsafe_a == loop.planner.failsafe_a[i]
            for i, r in enumerate(loop.planner.connectors)
        ),
        "every failsafe configured",
        loop.stats,
        40,
    )


def falls_back_to(charge: Charge, box: RunningServer) -> float:
    """What `charge` falls back to, as its register in `box` says."""
    return charge.fallback_a(box.get_registers(charge.unit, charge.fallback_at, 1)[0])


def plug_in(charge: Charge, box: RunningServer) -> None:
    """An EV comes to `charge`: its state register (an input register) says B."""
    setting = box.server.async_setValues(charge.unit, 4, 5, [HEIDELBERG_STATE_B])
    asyncio.run_coroutine_threadsafe(setting, box.loop).result(2)


@pytest.mark.timeout(90)
async def test_a_fallback_is_raised_only_beside_what_an_unreachable_one_may_fall_back_to() -> None:
    """Two Heidelbergs, each its own pymodbus server, on a 10 A connection: one 6 A fallback
    fits, the first's. The first stops answering (its register keeps 6 A), then an EV comes
    to the second, which the share now puts first: the first may still fall back to its 6 A,
    so nothing raises the second's fallback (before, 6 A was written to it: 12 A)."""
    pair = heidelberg("heidelberg-1", 1), heidelberg("heidelberg-2", 1)
    idle = [replace(c, registers={5: 2, 257: 15_000}) for c in pair]  # A1: no vehicle
    writes = Writes()  # to the second
    with trio.fail_after(75), ExitStack() as second_box, ExitStack() as first_box:
        boxes = [
            stack.enter_context(pymodbus_server({1: c.bank()}, trace_pdu=trace))
            for stack, c, trace in zip((first_box, second_box), idle, (None, writes), strict=True)
        ]
        chargers = "".join(
            modbus_charger(
                c.charger_id,
                "grid",
                modbus(c.profile, port=box.port, unit=1),
                f"{{ id = 1, max_current_a = {c.max_a} }}",
            )
            for c, box in zip(pair, boxes, strict=True)
        )
        text = failsafe_site("unreachable", grid_a=10, lease_s=30, chargers=chargers)
        config = SiteConfig.model_validate(tomllib.loads(text))
        async with (
            open_tcp_master("127.0.0.1", boxes[0].port, timeout_s=1.0) as master_1,
            open_tcp_master("127.0.0.1", boxes[1].port, timeout_s=1.0) as master_2,
        ):
            chargers_: dict[tuple[str, int], Charger] = {
                (c.charger_id, 1): driver_for(c.charger_id, load_named(c.profile), device)
                for c, device in zip(
                    pair, (ModbusDevice(master_1, 1), ModbusDevice(master_2, 1)), strict=True
                )
            }
            async with running_loop(config, SiteDevices(chargers=chargers_)) as loop:
                await wait_for_verified(loop)
                held = [
                    await trio.to_thread.run_sync(falls_back_to, c, b)
                    for c, b in zip(pair, boxes, strict=True)
                ]
                assert held == [6.0, 0.0]
                first_box.close()  # it stops answering, holding 6 A
                await wait_cycles(
                    lambda: loop.planner.verification.reservation(0, loop.clock()) is not None,
                    "the first unreachable",
                    loop.stats,
                    40,
                )
                await trio.to_thread.run_sync(plug_in, pair[1], boxes[1])
                runtime = loop.planner.connectors[1]
                await wait_cycles(
                    lambda: runtime.reading is not None and runtime.reading.state is IecState.B,
                    "the EV at the second",
                    loop.stats,
                    40,
                )
                start = loop.stats.cycles
                await wait_cycles(lambda: loop.stats.cycles > start + 20, "cycles", loop.stats, 22)
                assert loop.planner.verification.fallback_a(0) == 6.0
                assert await trio.to_thread.run_sync(falls_back_to, pair[1], boxes[1]) == 0.0
    assert set(writes.to_fallback(pair[1])) <= {(0,)}
