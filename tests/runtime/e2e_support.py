"""What the end-to-end tests share: pacing simulated time by the control cycle."""

from __future__ import annotations

import trio

from hubgate.runtime.demo import Demo
from hubgate.sim.engine import Simulation


async def run_for(demo: Demo, seconds: int) -> None:
    """`seconds` times: one control period of wall time and at least one finished control
    cycle, then one simulated second. Waiting for the cycle keeps the gateway's reaction,
    counted in simulated seconds, from stretching when the machine is loaded."""
    period = demo.gateway.site.control.cycle_s
    stats = demo.gateway.loop.stats
    for _ in range(seconds):
        done = stats.cycles
        await trio.sleep(period)
        for _ in range(1000):
            if stats.cycles > done:
                break
            await trio.sleep(period / 10)
        await demo.advance(1.0)


async def until_connected(demo: Demo, stations: int) -> None:
    """Wait until `stations` OCPP stations are connected to the gateway."""
    for _ in range(400):
        if sum(1 for s in demo.gateway.registry if s.session is not None) >= stations:
            return
        await trio.sleep(0.05)
    raise AssertionError(f"{stations} stations did not connect within 20 s")


def board_current(sim: Simulation) -> tuple[float, float, float]:
    """The switchboard's current per phase."""
    return sim.node_current("board")
