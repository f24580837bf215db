"""A charger that paces its own commands and would send nothing gives its limit in force at
once (`HeldLimit`): no task, no `set_limit`, and the loop counts it as answered; an
unchanged setpoint is handed to it again when it said it comes due (`quiet_until`) or may
be (`due_again`), at least every `QUIET_AT_MOST_S`, and a changed one at once."""

from __future__ import annotations

import itertools
import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import trio
import trio.testing

from hubgate.config.model import SiteConfig
from hubgate.control.connector_runtime import VERIFY_RETRY_MAX_S, VERIFY_RETRY_S
from hubgate.control.dispatch import QUIET_AT_MOST_S
from hubgate.control.limits import Limit, LimitSource
from hubgate.devices.model import AppliedLimit, HeldLimit, Reading, SessionCharger
from tests.support.loop_site import (
    SITE_TOML,
    SimCharger,
    SimSite,
    modbus_chargers,
    running_loop,
    site_config,
)
from tests.support.toml_tables import ocpp_charger


@dataclass
class PacedCharger(SimCharger):
    """A charger behind a session (read from memory, handed every cycle's setpoint) that
    sends a setpoint only when it changed."""

    sent: int = 0
    held: int = 0
    quiet_s: float = -math.inf
    """How long after each answer it says its setpoint sends nothing more (-inf: ask again)."""
    quiet_until: float = -math.inf
    due_again: Callable[[], None] = field(default=lambda: None)
    asked: list[tuple[float, float]] = field(default_factory=list)
    """(when, setpoint) of every limit_in_force or set_limit."""

    def _asked(self, current_a: float) -> None:
        now = trio.current_time()
        self.asked.append((now, current_a))
        self.quiet_until = now + self.quiet_s

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
        self._asked(current_a)
        return AppliedLimit(self.limit_a, phases, self.limit_a <= 0, trio.current_time())

    def joins_turn(self, current_a: float, phases: int) -> bool:
        return False

    async def set_limit(self, current_a: float, phases: int) -> AppliedLimit:
        self.sent += 1
        applied = await super().set_limit(current_a, phases)
        self._asked(current_a)
        return applied


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


def short_cycles(config: SiteConfig, cycle_s: float) -> SiteConfig:
    """`config` with another control cycle."""
    control = config.control.model_copy(update={"cycle_s": cycle_s})
    return config.model_copy(update={"control": control})


@pytest.mark.parametrize(("quiet_s", "every_s"), [(3600.0, QUIET_AT_MOST_S), (0.35, 0.4)])
async def test_an_unchanged_setpoint_is_handed_again_when_due_and_a_changed_one_at_once(
    autojump_clock: trio.testing.MockClock, quiet_s: float, every_s: float
) -> None:
    sim = SimSite.build()
    paced = PacedCharger("cp-1", quiet_s=quiet_s)
    sim.chargers[0] = paced
    async with running_loop(short_cycles(site_config(), 0.1), sim.devices()) as loop:
        await trio.sleep(30)
        began, asked = trio.current_time(), len(paced.asked)
        await trio.sleep(30)
        settled = paced.asked[asked:]
        assert {a for _, a in settled} == {paced.limit_a}  # (unchanged through the window)
        now = trio.current_time()
        assert paced.limit_a > 8
        loop.limits.set(
            "cp-1#1", LimitSource.API, Limit(phase_a=(8, 8, 8)), now=now, lease_s=60, origin="t"
        )
        await trio.sleep(0.25)
        lowered = paced.limit_a
        await trio.sleep(10)
        told_at, asked = trio.current_time(), len(paced.asked)
        paced.due_again()  # (as a new report would)
        await trio.sleep(0.15)
        told = paced.asked[asked:]
    cycles = round(30 / 0.1)
    # every `every_s` (cycles of 0.1 s: the next cycle at or after it), not every cycle
    assert len(settled) == pytest.approx(30 / every_s, abs=2)
    assert len(settled) < cycles / 2
    gaps = [b - a for (a, _), (b, _) in itertools.pairwise(settled)]
    assert max(gaps) <= every_s + 0.1 + 1e-6
    assert settled[0][0] - began <= every_s + 0.1 + 1e-6
    assert lowered == 8  # a lower setpoint within the cycle, however quiet it said it was
    assert [a for _, a in told] == [8]  # told it may be due: asked again the next cycle
    assert told[0][0] - told_at <= 0.1 + 1e-6


@dataclass
class WaitingTurn(PacedCharger):
    """A paced charger whose limit exchange may wait for its turn behind one in flight
    (`joins_turn`, as `OcppCharger`'s on a slow station): it takes every setpoint then."""

    waiting: bool = False
    joined: list[float] = field(default_factory=list)

    def joins_turn(self, current_a: float, phases: int) -> bool:
        if self.waiting:
            self.joined.append(current_a)
        return self.waiting


async def test_a_setpoint_for_an_exchange_waiting_its_turn_is_left_with_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """While the charger's exchange waits for its turn, each cycle's setpoint is left with
    it (`joins_turn`) and `set_limit` is not called (it was: a task each cycle that waited
    for that exchange and was cut at the deadline); not answered, it is handed the newest
    setpoint each cycle, and sent it once nothing waits."""
    sim = SimSite.build()
    paced = WaitingTurn("cp-1")
    sim.chargers[0] = paced
    async with running_loop(short_cycles(site_config(), 0.1), sim.devices()) as loop:
        await trio.sleep(10)
        assert paced.limit_a > 8
        paced.waiting, sent = True, paced.sent
        limit = Limit(phase_a=(8, 8, 8))
        now = trio.current_time()
        loop.limits.set("cp-1#1", LimitSource.API, limit, now=now, lease_s=60, origin="t")
        await trio.sleep(1)
        joined, sent_meanwhile = list(paced.joined), paced.sent - sent
        paced.waiting = False
        await trio.sleep(0.15)
    assert sent_meanwhile == 0
    assert len(joined) >= 9
    assert set(joined) == {8}
    assert paced.limit_a == 8


@dataclass
class SlowToConfigure(PacedCharger):
    """A paced charger whose failsafe configuration takes `configure_s` (an OCPP station's
    exchange on a slow link, or behind others): longer than a cycle's command deadline."""

    configure_s: float = 1.5
    tries: list[float] = field(default_factory=list)
    """When each `configure_failsafe` began."""

    async def configure_failsafe(self, timeout_s: float, failsafe_current_a: float) -> None:
        self.tries.append(trio.current_time())
        await trio.sleep(self.configure_s)
        self.configure(trio.current_time(), timeout_s, failsafe_current_a)


def ocpp_cp1_site(cycle_s: float) -> SiteConfig:
    """The test site with cp-1 an OCPP charger, at cycles of `cycle_s`."""
    chargers = modbus_chargers("board")
    cp1_end = chargers.index("[[chargers]]", 1)
    toml = SITE_TOML.replace(chargers, ocpp_charger("board") + chargers[cp1_end:])
    return short_cycles(SiteConfig.model_validate(tomllib.loads(toml)), cycle_s)


async def test_a_failsafe_configuration_cut_short_goes_on_and_counts_when_it_ends(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A paced charger's failsafe configuration that outlasts the command deadline is not
    cut and tried again a second later behind the one before (at depot-500 with 0.1 s
    cycles 12,467 tries in 94 s, 370 verified): it goes on, no other try starts meanwhile,
    and it counts as verified as it ends. Until then the charger is reserved at its
    maximum and not commanded."""
    sim = SimSite.build()
    slow = SlowToConfigure("cp-1", configure_s=1.5)
    sim.chargers[0] = slow
    async with running_loop(ocpp_cp1_site(0.1), sim.devices()) as loop:
        await trio.sleep(1.3)  # in flight, past a retry's time
        now = loop.clock()
        assert len(slow.tries) == 1
        assert slow.configured == 0
        assert loop.planner.verification.reservation(0, now) == (32.0, "failsafe not verified")
        assert slow.limit_a == 0
        others = sum(c.limit_a for c in sim.chargers[1:])
        assert others <= 64 - 32
        await trio.sleep(1.2)  # ended at about 1.5; commanded the cycle after
        now = loop.clock()
        assert len(slow.tries) == 1
        assert slow.configured == 1
        assert loop.planner.verification.reservation(0, now) is None
        assert slow.limit_a > 0
        assert not loop.planner.connectors[0].watch.needs_verification


async def test_a_refused_failsafe_configuration_is_tried_again_with_a_back_off(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Each try in a row that ends without verifying the failsafe settings doubles the wait
    before the next, up to `VERIFY_RETRY_MAX_S`; the charger stays reserved at its maximum
    meanwhile, and one that takes them is commanded at the next try."""
    sim = SimSite.build()
    stubborn = SlowToConfigure("cp-1", configure_s=0.0, rejects_failsafe=True)
    sim.chargers[0] = stubborn
    async with running_loop(ocpp_cp1_site(0.1), sim.devices()) as loop:
        await trio.sleep(30)
        assert loop.planner.verification.reservation(0, loop.clock()) == (
            32.0,
            "failsafe not verified",
        )
        assert stubborn.limit_a == 0
        stubborn.rejects_failsafe = False
        await trio.sleep(VERIFY_RETRY_MAX_S + 0.5)
        assert stubborn.configured == 1
        assert stubborn.limit_a > 0
    gaps = [b - a for a, b in itertools.pairwise(stubborn.tries)]
    waits = [min(VERIFY_RETRY_S * 2**n, VERIFY_RETRY_MAX_S) for n in range(len(gaps))]
    assert len(gaps) >= 5
    assert gaps == pytest.approx(waits, abs=0.1 + 1e-6)
