"""The README's demo (the depot-200 example, `hubgate demo`'s default scenario): its SunSpec
hybrid battery is read and commanded by the gateway over Modbus, not left 'unavailable'."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from hubgate.runtime.demo import Demo, open_demo
from hubgate.sim.engine import Simulation
from hubgate.sim.scenario_loader import load_scenario
from hubgate.state import EnergyState
from tests.support.wait import wait_until

SCENARIO = Path(__file__).parents[2] / "examples" / "scenarios" / "grid-limit-step.toml"


def battery_setpoint_kw(sim: Simulation) -> float:
    """What the simulated battery was told over the wire (positive: charging)."""
    assert sim.battery is not None
    return sim.battery.setpoint_kw


def revert_timeout_s(demo: Demo) -> object:
    """The battery's InOutWRte_RvrtTms as the gateway left it."""
    (fed,) = demo.sim_site.site.boxes["battery"].devices
    return demo.sim_site.call(lambda: fed.device.value("failsafe.timeout"))


async def test_the_depot_demo_commands_its_battery() -> None:
    loaded = load_scenario(SCENARIO)
    assert loaded.site.battery is not None
    assert loaded.site.battery.modbus.profile == "sunspec-hybrid-storage"
    with trio.fail_after(90):
        async with open_demo(loaded) as demo, trio.open_nursery() as nursery:
            nursery.start_soon(demo.pace)
            hub = demo.gateway.loop.hub

            def commanding() -> EnergyState | None:
                energy = hub.latest.energy if hub.latest is not None else None
                return energy if energy is not None and energy.battery_command_kw else None

            energy = await wait_until(commanding, "a battery command", timeout_s=60)
            command_kw = energy.battery_command_kw
            assert command_kw is not None

            async def told() -> float | None:  # the sim's sign is + charging, the gateway's
                kw = await demo.simulation(battery_setpoint_kw)  # + discharging
                return kw if kw * command_kw < 0 else None

            told_kw = await wait_until(told, "the command on the wire")
            lease_s = await trio.to_thread.run_sync(revert_timeout_s, demo)
            nursery.cancel_scope.cancel()
    assert energy.battery_mode != "unavailable"
    assert energy.battery_soc_percent is not None
    assert energy.battery_power_kw is not None
    assert energy.battery_command_kw is not None
    # told over the wire (the sim's sign is + charging, the gateway's + discharging)
    assert told_kw * energy.battery_command_kw < 0
    assert lease_s == pytest.approx(loaded.site.control.lease_s)  # the device-side lease
