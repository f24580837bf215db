"""The control loop commands only under the epoch its authority grants (MockClock)."""

from __future__ import annotations

from dataclasses import dataclass, field

import trio
import trio.testing

from hubgate.config.model import SiteConfig
from hubgate.control.decisions import DecisionLog
from hubgate.control.limits import LimitBook
from hubgate.control.loop import ControlLoop
from hubgate.state import StateHub
from tests.support.loop_site import SimSite, site_config


@dataclass
class Switch:
    """An authority the test sets: `granted` is the epoch, `fenced` refuses every command."""

    granted: int | None = None
    fenced: bool = False

    def epoch(self) -> int | None:
        return self.granted

    def holds(self, epoch: int) -> bool:
        return not self.fenced and epoch == self.granted


@dataclass
class Promoting(Switch):
    """A `Switch` that tells when it grants an epoch (`Promotion`)."""

    _granting: trio.Event = field(default_factory=trio.Event)

    def grant(self, epoch: int) -> None:
        self.granted = epoch
        self._granting.set()
        self._granting = trio.Event()

    async def promoted(self) -> None:
        await self._granting.wait()


def quarter_second_cycles() -> SiteConfig:
    """The loop's site at a cycle of 0.25 s (shorter than `VERIFY_RETRY_S`)."""
    config = site_config()
    return config.model_copy(
        update={"control": config.control.model_copy(update={"cycle_s": 0.25})}
    )


def standby(
    config: SiteConfig, switch: Switch | None = None
) -> tuple[SimSite, Switch, ControlLoop]:
    """A simulated site's loop under a `Switch` that grants no epoch yet."""
    sim = SimSite.build()
    switch = Switch() if switch is None else switch
    loop = ControlLoop(
        config,
        sim.devices(),
        limits=LimitBook(),
        decisions=DecisionLog(),
        hub=StateHub(),
        authority=switch,
    )
    return sim, switch, loop


async def test_a_standby_senses_and_plans_but_commands_only_under_its_epoch(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sim, switch, loop = standby(site_config())
    async with trio.open_nursery() as nursery:
        await nursery.start(loop.run)
        await trio.sleep(20)
        assert loop.stats.cycles >= 19  # sensing and planning all along
        assert loop.planner.meter_watch[sim.meter.id].budget_share(trio.current_time()) == 1.0
        assert all(c.configured == 0 and c.limit_a == 0 for c in sim.chargers)
        assert await loop.safe_stop() == {}  # a standby commands nothing, not even failsafe

        switch.granted = 4
        await trio.sleep(3)
        assert all(c.configured == 1 and c.limit_a > 0 for c in sim.chargers)

        switch.fenced = True  # the lease is lost between a cycle's start and its commands
        sim.meter.base_a = 30.0
        limits = [c.limit_a for c in sim.chargers]
        await trio.sleep(10)
        assert [c.limit_a for c in sim.chargers] == limits

        switch.granted, switch.fenced = 5, False  # a new epoch: verify and send everything
        await trio.sleep(3)
        assert all(c.configured == 2 for c in sim.chargers)
        assert sum(c.limit_a for c in sim.chargers) <= 64 - 30 + 1
        nursery.cancel_scope.cancel()
    events = [e.message for e in loop.events.recent if e.subject == "cluster"]
    assert events == [
        "commanding (epoch 4)",
        "commanding (epoch 5)",
    ]


async def test_a_new_leader_verifies_its_chargers_in_its_first_cycle(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A standby plans every cycle and sends nothing: the failsafe verifications its plans
    count as tried (each retried `VERIFY_RETRY_S` after the last) do not hold back the
    first cycle it leads (they did, by up to a second, at a cycle shorter than that)."""
    sim, switch, loop = standby(quarter_second_cycles())
    async with trio.open_nursery() as nursery:
        await nursery.start(loop.run)
        await trio.sleep(10.1)  # the standby's last cycle at 10.0 counted a try for each
        switch.granted = 4
        await trio.sleep(0.25)  # its first cycle as leader, at 10.25
        assert [c.configured for c in sim.chargers] == [1] * len(sim.chargers)
        nursery.cancel_scope.cancel()


async def test_a_charger_not_ready_for_its_failsafe_is_asked_again_the_next_cycle(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A charger that cannot be configured yet (an OCPP charger still being attended to
    after it connected: nothing is sent) is asked again the next cycle, not `VERIFY_RETRY_S`
    later: a hand-over's new leader lost a second on the 2.0.1 station that way."""
    sim, switch, loop = standby(quarter_second_cycles())
    async with trio.open_nursery() as nursery:
        await nursery.start(loop.run)
        await trio.sleep(10.1)
        for charger in sim.chargers:
            charger.ready_at = 10.3  # ready after the first leading cycle's try (10.25)
        switch.granted = 4
        await trio.sleep(0.2)  # after the try at 10.25
        now = loop.clock()
        # nothing was sent: counted as before (its reading), not as a charger whose
        # failsafe could not be configured (its maximum: a hand-over's new leader paused
        # the cars beside an inherited 2.0.1 station that way, as it came back)
        assert [loop.planner.verification.reservation(i, now) for i in range(3)] == [None] * 3
        await trio.sleep(0.3)  # the cycle at 10.5, not the retry at 11.25
        assert [c.configured for c in sim.chargers] == [1] * len(sim.chargers)
        nursery.cancel_scope.cancel()


async def test_a_new_leaders_first_cycle_starts_as_it_takes_the_lead(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """An authority that tells when it grants an epoch (`Promotion`: a gateway taking the
    lease) has the loop's first cycle as leader start then, not at the next tick (a
    failover's first full cycle came up to a cycle after the take-over)."""
    switch = Promoting()
    sim, _, loop = standby(quarter_second_cycles(), switch)
    async with trio.open_nursery() as nursery:
        await nursery.start(loop.run)
        await trio.sleep(10.1)  # ticks at 10.0 and 10.25
        switch.grant(4)
        await trio.sleep(0.1)  # before the tick at 10.25
        assert [c.configured for c in sim.chargers] == [1] * len(sim.chargers)
        assert all(c.limit_a > 0 for c in sim.chargers)
        nursery.cancel_scope.cancel()
