"""What the end-to-end tests share: pacing simulated time by the control cycle."""

from __future__ import annotations

import trio

from hubgate.runtime.demo import Demo
from hubgate.sim.engine import Simulation


async def run_for(demo: Demo, seconds: int) -> None:
    """One control cycle of wall time, then one simulated second; `seconds` times."""
    period = demo.gateway.site.control.cycle_s
    for _ in range(seconds):
        await trio.sleep(period)
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
