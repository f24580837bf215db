"""End to end: the gateway on loopback controls the simulated site in protocol mode.

Real peers: the simulator's pymodbus devices (chargers with watchdogs, meters,
the grid operator's box) and its OCPP stations (the `ocpp` package) dialling
the gateway. Simulated time advances one second per control cycle.
"""

from __future__ import annotations

from pathlib import Path

import trio
from e2e_support import board_current, run_for, until_connected

from hubgate.control.limits import LimitSource
from hubgate.runtime.demo import Demo, open_demo, simulated_site
from hubgate.runtime.gateway import open_gateway
from hubgate.sim.scenario_loader import load_scenario

SCENARIO = Path(__file__).parent / "e2e-scenario.toml"
KILL_SCENARIO = Path(__file__).parent / "e2e-kill.toml"
FAILSAFE_A = 6.0
MODBUS_WATCHDOG_S = 60.0
"""The simulated alfen-eve's communication timeout is fixed at 60 s."""


async def test_grid_operator_step_meter_loss_and_charger_loss_exceed_no_limit() -> None:
    loaded = load_scenario(SCENARIO)
    with trio.fail_after(80):
        async with open_demo(loaded) as demo:
            await until_connected(demo, 3)
            await run_for(demo, 90)
            summary = await demo.summary()
            loop = demo.gateway.loop
            operator = [
                e.limit.power_kw
                for e in loop.limits.audit()
                if e.source is LimitSource.GRID_OPERATOR
            ]
            notes = [n for r in loop.decisions.recent(400) for n in r.notes]
            charging = await demo.simulation(lambda sim: sum(board_current(sim)))
    assert summary.violations == ()
    assert operator[0] == 69.0
    assert 20.7 in operator  # the step to 30 % came through the box and is audited
    assert any("grid meter lost" in n for n in notes)
    assert any("cp-2#1 unreachable: 32 A reserved" in n for n in notes)
    assert isinstance(charging, float)
    assert charging > 3 * 10  # still charging under the 30 % limit


async def test_gateway_killed_chargers_fall_back_to_failsafe_within_lease() -> None:
    """Layer 3: OCPP profiles' validTo and the Modbus chargers' own watchdogs (fixed at 60 s)."""
    loaded = load_scenario(KILL_SCENARIO)
    with trio.fail_after(80), simulated_site(loaded) as (sim_site, site):
        async with trio.open_nursery() as nursery:

            async def gateway_life(*, task_status: trio.TaskStatus[Demo]) -> None:
                async with open_gateway(site) as gateway:
                    task_status.started(Demo(sim_site, gateway))
                    await trio.sleep_forever()

            demo = await nursery.start(gateway_life)
            await until_connected(demo, 3)
            await run_for(demo, 30)
            before = await demo.simulation(board_current)
            nursery.cancel_scope.cancel()  # the gateway dies: no shutdown, no last command
        await trio.to_thread.run_sync(sim_site.advance, MODBUS_WATCHDOG_S + 10.0)
        after = await demo.simulation(board_current)
    assert isinstance(before, tuple)
    assert isinstance(after, tuple)
    assert max(before) > 6 * FAILSAFE_A
    assert max(after) <= 6 * FAILSAFE_A + 0.5
