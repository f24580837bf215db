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
from tests.support.wait import wait_cycles

SCENARIO = Path(__file__).parents[2] / "examples" / "scenarios" / "grid-limit-step.toml"


def battery_setpoint_kw(sim: Simulation) -> float:
    """What the simulated battery was told over the wire (positive: charging)."""
    assert sim.battery is not None
    return sim.battery.setpoint_kw


def revert_timeout_s(demo: Demo) -> object:
    """The battery's InOutWRte_RvrtTms as the gateway left it."""
    (fed,) = demo.sim_site.site.boxes["battery"].devices
    return demo.sim_site.call(lambda: fed.device.value("failsafe.timeout"))


@pytest.mark.timeout(360)  # after the deadline below, so that Trio ends the test cleanly
async def test_the_depot_demo_commands_its_battery() -> None:
    loaded = load_scenario(SCENARIO)
    assert loaded.site.battery is not None
    assert loaded.site.battery.modbus.profile == "sunspec-hybrid-storage"
    with trio.fail_after(300):
        async with open_demo(loaded) as demo, trio.open_nursery() as nursery:
            nursery.start_soon(demo.pace)
            hub, stats = demo.gateway.loop.hub, demo.gateway.loop.stats

            def commanding() -> EnergyState | None:
                energy = hub.latest.energy if hub.latest is not None else None
                return energy if energy is not None and energy.battery_command_kw else None

            # Bounded by the gateway's cycles, not the wall clock: on a loaded machine the
            # simulated site in this process answers late, and a command that got no answer
            # is sent again the next cycle.
            energy = await wait_cycles(commanding, "a battery command", stats, 120)

            async def told() -> tuple[float, EnergyState] | None:
                kw = await demo.simulation(battery_setpoint_kw)
                latest = commanding()  # the sim: + charging, the gateway: + discharging
                return (kw, latest) if latest and kw * latest.battery_command_kw < 0 else None

            told_kw, energy = await wait_cycles(told, "the command on the wire", stats, 60)
            lease_s = await trio.to_thread.run_sync(revert_timeout_s, demo)
            nursery.cancel_scope.cancel()
    assert energy.battery_mode != "unavailable"
    assert energy.battery_soc_percent is not None
    assert energy.battery_power_kw is not None
    assert energy.battery_command_kw is not None
    # told over the wire (the sim's sign is + charging, the gateway's + discharging)
    assert told_kw * energy.battery_command_kw < 0
    assert lease_s == pytest.approx(loaded.site.control.lease_s)  # the device-side lease
