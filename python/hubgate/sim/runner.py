"""Running a simulation: as fast as possible, or paced against Trio's clock.

The optional in-process controller runs before the step that starts at each of
its cycles, so it sees the meters as they were during the previous step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import trio

from hubgate.sim.engine import Simulation


class Controller(Protocol):
    """Writes chargers' limits from what it reads of the site, every `period_s`."""

    period_s: float

    def update(self, sim: Simulation) -> None:
        """One control cycle."""


class ClosedLoop:
    """A simulation with an optional in-process controller."""

    def __init__(self, sim: Simulation, controller: Controller | None = None) -> None:
        self.sim = sim
        self.controller = controller
        self._next_control = 0.0

    def step(self) -> None:
        """Run the controller when its cycle is due, then one simulation step."""
        if self.controller is not None and self.sim.now >= self._next_control - 1e-9:
            self.controller.update(self.sim)
            self._next_control += self.controller.period_s
        self.sim.step()

    def steps_until(self, end_s: float) -> int:
        """How many steps remain before simulated time reaches `end_s`."""
        return max(0, round((end_s - self.sim.now) / self.sim.step_s))


def run_fast(loop: ClosedLoop, duration_s: float) -> None:
    """Step through `duration_s` simulated seconds as fast as the CPU allows."""
    for _ in range(loop.steps_until(loop.sim.now + duration_s)):
        loop.step()


async def run_paced(
    loop: ClosedLoop,
    duration_s: float,
    speed: float,
    on_step: Callable[[Simulation], None] | None = None,
) -> None:
    """Step in time with Trio's clock, `speed` simulated seconds per clock second.

    Each step starts at its own deadline (`trio.sleep_until`), so a slow step
    delays only itself and the schedule never drifts.
    """
    if speed <= 0:
        raise ValueError(f"speed must be above 0, got {speed}")
    sim = loop.sim
    origin_clock, origin_sim = trio.current_time(), sim.now
    for _ in range(loop.steps_until(sim.now + duration_s)):
        await trio.sleep_until(origin_clock + (sim.now - origin_sim) / speed)
        loop.step()
        if on_step is not None:
            on_step(sim)
