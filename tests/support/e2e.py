"""What the end-to-end tests share: pacing simulated time by the control cycle."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, cast

import trio

from hubgate.runtime.demo import Demo
from hubgate.sim.engine import Simulation
from tests.support.wait import wait_until

T = TypeVar("T")


async def one_cycle(demo: Demo) -> None:
    """One control period of wall time and a whole control cycle that started after the
    call: pacing the simulation by this keeps the gateway's reaction, counted in simulated
    seconds, from stretching when the machine is loaded. A cycle that merely finished
    would not do: one that read the site before the last step and commands after the next
    lets the simulation outrun the gateway by a step."""
    period = demo.gateway.site.control.cycle_s
    loop = demo.gateway.loop
    since = loop.clock()

    def started_since() -> bool:
        last = loop.decisions.recent(1)
        return bool(last) and last[0].at >= since

    await trio.sleep(period)
    await wait_until(started_since, "a control cycle", timeout_s=100 * period)


async def run_for(demo: Demo, seconds: int) -> None:
    """`seconds` times: `one_cycle`, then one simulated second."""
    for _ in range(seconds):
        await one_cycle(demo)
        await demo.advance(1.0)


async def sampled(demo: Demo, seconds: int, sample: Callable[[Simulation], T]) -> list[T]:
    """`run_for` `seconds`, with `sample` of the simulation after each simulated second."""
    samples = []
    for _ in range(seconds):
        await run_for(demo, 1)
        samples.append(cast(T, await demo.simulation(sample)))
    return samples


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
