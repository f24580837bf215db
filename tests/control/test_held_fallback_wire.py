"""An Alfen whose installer set 32 A as its safe current (1212, ACE Service Installer) on a
site sized for 6 A fallbacks: the control loop reads it, counts 32 A in the failsafe budget,
raises an event naming the register and the tool, and gives the Heidelbergs beside it
(whose fallback register 262 hubgate writes) what is left: nothing. Set back to 6 A while
the Alfen was off the network, it is read again when it comes back, and the Heidelbergs get
their 6 A. Every charger is its profile's simulated device on pymodbus (the Alfen's 1208
counts down, its socket falls back to 1212: `hubgate.sim.simulated_device`)."""

from __future__ import annotations

import tomllib
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager

import pytest
import trio

from hubgate.config.model import SiteConfig
from hubgate.control.loop import ControlLoop
from hubgate.control.sensors import SiteDevices
from hubgate.devices.model import Charger
from hubgate.devices.profile_driver import ProfileCharger, driver_for
from hubgate.modbus.master import ModbusDevice
from hubgate.modbus.tcp_master import open_tcp_master
from hubgate.profiles.loader import load_named
from hubgate.profiles.model import Quantity
from hubgate.sim.modbus_box import serve
from hubgate.sim.simulated_device import SimulatedDevice
from tests.support.loop_site import running_loop
from tests.support.toml_tables import connector_32a, failsafe_site, modbus, modbus_charger
from tests.support.wait import wait_cycles

CHARGERS = (
    ("alfen", "alfen-eve"),
    ("heidelberg-1", "heidelberg-energy-control"),
    ("heidelberg-2", "heidelberg-energy-control"),
)


def site(ports: dict[str, int]) -> SiteConfig:
    """20 A per phase: room for three 6 A fallbacks, not for a 32 A one."""
    chargers = "".join(
        modbus_charger(
            charger_id,
            "grid",
            modbus(profile, port=ports[charger_id], unit=load_named(profile).transport.unit),
            connector_32a(),
        )
        for charger_id, profile in CHARGERS
    )
    text = failsafe_site("sized for 6 A fallbacks", grid_a=20, lease_s=60, chargers=chargers)
    return SiteConfig.model_validate(tomllib.loads(text))


@asynccontextmanager
async def chargers(
    sims: dict[str, SimulatedDevice], ports: dict[str, int]
) -> AsyncIterator[dict[tuple[str, int], Charger]]:
    """Each charger's driver over its own Modbus TCP master (one port per charger)."""
    async with trio.open_nursery() as nursery:
        found: dict[tuple[str, int], Charger] = {}
        for charger_id, profile in CHARGERS:
            master = await nursery.start(_master, ports[charger_id])
            driver = driver_for(
                charger_id, load_named(profile), ModbusDevice(master, sims[charger_id].unit)
            )
            assert isinstance(driver, ProfileCharger)
            found[(charger_id, 1)] = driver
        yield found
        nursery.cancel_scope.cancel()


async def _master(port: int, task_status: trio.TaskStatus[object]) -> None:
    async with open_tcp_master("127.0.0.1", port, timeout_s=1.0, retries=0) as master:
        task_status.started(master)
        await trio.sleep_forever()


def heidelberg_fallbacks_a(sims: dict[str, SimulatedDevice]) -> list[float | str | None]:
    return [sims[f"heidelberg-{i}"].value("failsafe.fallback") for i in (1, 2)]


def held_events(loop: ControlLoop) -> list[str]:
    return [
        e.message
        for e in loop.events.recent
        if e.subject == "alfen#1" and "whatever hubgate asks" in e.message
    ]


@pytest.mark.timeout(120)
async def test_an_alfen_holding_32_a_counts_32_a_and_is_read_again_after_a_reconnect() -> None:
    sims = {charger_id: SimulatedDevice(load_named(p)) for charger_id, p in CHARGERS}
    sims["alfen"].set(Quantity.SAFE_CURRENT, 32.0)
    with trio.fail_after(100), ExitStack() as stack:
        servers = {charger_id: stack.enter_context(ExitStack()) for charger_id in sims}
        ports = {name: servers[name].enter_context(serve(sim)) for name, sim in sims.items()}
        async with (
            chargers(sims, ports) as drivers,
            running_loop(site(ports), SiteDevices(chargers=drivers)) as loop,
        ):
            planner = loop.planner
            await wait_cycles(lambda: held_events(loop), "the 32 A event", loop.stats, 40)
            [event] = held_events(loop)
            assert "falls back to 32 A" in event
            assert "register 1212, set in ACE Service Installer" in event
            await wait_cycles(
                lambda: list(planner.failsafe_a) == [32.0, 0.0, 0.0], "the budget", loop.stats, 40
            )
            # the Heidelbergs' share is written: 0 A, their pause value (262 x0.1 A: 0)
            await wait_cycles(
                lambda: heidelberg_fallbacks_a(sims) == [0.0, 0.0], "0 A written", loop.stats, 40
            )
            assert sims["alfen"].value("failsafe.fallback") == 32.0  # read, never written

            # off the network (its server closed); its installer sets 6 A in ACE meanwhile
            await trio.to_thread.run_sync(servers["alfen"].close)
            sims["alfen"].set(Quantity.SAFE_CURRENT, 6.0)
            alfen = planner.connectors[0]
            await wait_cycles(
                lambda: not alfen.watch.reachable(loop.clock()), "unreachable", loop.stats, 40
            )
            assert planner.failsafe_a[0] == 32.0  # what was read last still counts
            servers["alfen"].enter_context(serve(sims["alfen"], port=ports["alfen"]))
            await wait_cycles(
                lambda: list(planner.failsafe_a) == [6.0, 6.0, 6.0], "read again", loop.stats, 80
            )
            await wait_cycles(
                lambda: heidelberg_fallbacks_a(sims) == [6.0, 6.0], "6 A written", loop.stats, 40
            )
            assert len(held_events(loop)) == 1  # 6 A is no warning


@pytest.mark.timeout(60)
async def test_a_validity_shorter_than_the_heartbeat_is_seen_as_a_lapse() -> None:
    """A station whose validity time was set to 1 s (evcc-io/evcc#12492 found one at 10 s
    against evcc's 25 s heartbeat) lets hubgate's limit lapse between writes: 1208 reads 0,
    the socket runs at its safe current. hubgate raises an event and writes again."""
    sims = {charger_id: SimulatedDevice(load_named(p)) for charger_id, p in CHARGERS}
    alfen = sims["alfen"]
    alfen.device_timeout_s = 1.0
    with trio.fail_after(50), ExitStack() as stack:
        ports = {name: stack.enter_context(serve(sim)) for name, sim in sims.items()}
        async with (
            chargers(sims, ports) as drivers,
            running_loop(site(ports), SiteDevices(chargers=drivers)) as loop,
        ):

            def lapses() -> list[str]:
                return [e.message for e in loop.events.recent if "validity reads 0" in e.message]

            await wait_cycles(lapses, "the lapse", loop.stats, 60)
            assert "runs on its fallback current (6 A)" in lapses()[0]

            def validity_s() -> float:
                alfen.poll()
                value = alfen.value("fields.limit_validity")
                assert isinstance(value, float)
                return value

            # read as 0 while commanded, then written again: valid for its 1 s once more
            await wait_cycles(lambda: validity_s() > 0, "written again", loop.stats, 30)
