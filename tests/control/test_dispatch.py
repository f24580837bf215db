"""A charger that paces its own commands and would send nothing gives its limit in force at
once (`HeldLimit`): no task, no `set_limit`, and the loop counts it as answered."""

from __future__ import annotations

from dataclasses import dataclass

import trio
import trio.testing

from hubgate.devices.model import AppliedLimit, HeldLimit, Reading, SessionCharger
from tests.support.loop_site import SimCharger, SimSite, running_loop, site_config


@dataclass
class PacedCharger(SimCharger):
    """A charger behind a session (read from memory, handed every cycle's setpoint) that
    sends a setpoint only when it changed."""

    sent: int = 0
    held: int = 0

    def latest(self) -> Reading:
        return self.sample(trio.current_time())

    async def remote_start(self, id_tag: str) -> str | None:
        return None

    async def remote_stop(self) -> str | None:
        return None

    def limit_in_force(self, current_a: float, phases: int) -> AppliedLimit | None:
        if not self.reachable or current_a != self.limit_a:
            return None
        self.held += 1
        return AppliedLimit(self.limit_a, phases, self.limit_a <= 0, trio.current_time())

    async def set_limit(self, current_a: float, phases: int) -> AppliedLimit:
        self.sent += 1
        return await super().set_limit(current_a, phases)


async def test_an_unchanged_setpoint_is_held_without_being_sent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sim = SimSite.build()
    paced = PacedCharger("cp-1")
    assert isinstance(paced, SessionCharger)
    assert isinstance(paced, HeldLimit)
    sim.chargers[0] = paced
    async with running_loop(site_config(), sim.devices()) as loop:
        await trio.sleep(60)
        cycles = loop.stats.cycles
        state = loop.hub.latest
        assert state is not None
        (mine,) = (c for c in state.connectors if c.charger == "cp-1")
        others = [c.setpoint_a for c in state.connectors if c.charger != "cp-1"]
    assert cycles >= 55
    assert paced.sent + paced.held >= cycles - 2  # handed a setpoint every cycle
    assert paced.sent <= 10  # its setpoint changes a few times while the meter settles
    assert (mine.status, mine.setpoint_a) != ("UNREACHABLE", 0.0)
    assert mine.setpoint_a == paced.limit_a
    assert mine.setpoint_a >= min(others)  # held limits count as answered: not reserved
