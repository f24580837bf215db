"""What the end-to-end tests share: pacing simulated time by the control cycle."""

from __future__ import annotations

import trio

from hubgate.runtime.demo import Demo
from hubgate.sim.engine import Simulation
from tests.support.wait import wait_until


async def one_cycle(demo: Demo) -> None:
    """One control period of wall time and at least one finished control cycle: pacing the
    simulation by this keeps the gateway's reaction, counted in simulated seconds, from
    stretching when the machine is loaded."""
    period = demo.gateway.site.control.cycle_s
    stats = demo.gateway.loop.stats
    done = stats.cycles
    await trio.sleep(period)
    await wait_until(lambda: stats.cycles > done, "a control cycle", timeout_s=100 * period)


async def run_for(demo: Demo, seconds: int) -> None:
    """`seconds` times: `one_cycle`, then one simulated second."""
    for _ in range(seconds):
        await one_cycle(demo)
        await demo.advance(1.0)


async def until_connected(demo: Demo, stations: int) -> None:
    """Wait until `stations` OCPP stations are connected to the gateway."""
    registry = demo.gateway.registry
    await wait_until(
        lambda: sum(1 for s in registry if s.session is not None) >= stations,
        f"{stations} stations to connect",
        timeout_s=20,
    )


def board_current(sim: Simulation) -> tuple[float, float, float]:
    """The switchboard's current per phase."""
    return sim.node_current("board")
