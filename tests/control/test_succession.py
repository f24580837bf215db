"""What a leader passes on about its chargers' failsafes while it reconfigures them, and what
its successor counts them at (`control.succession`), sans-IO.

The site of test_held_fallback: cp-0's device holds its own fallback (32 A until read, then
6 A), cp-1 and cp-2 are OCPP chargers on 20 A per phase. At start-up cp-0 counts at 32 A,
so cp-1 and cp-2 are configured with 0 A; once cp-0 reads 6 A they are reconfigured with
6 A. Until a reconfiguration is verified the charger holds the old failsafe profile, and a
reconfiguration cut short may have reached it: whoever counts on it meanwhile counts the
larger of the two."""

from __future__ import annotations

from collections.abc import Mapping

import trio
import trio.testing

from hubgate.control.authority import NOTHING_INHERITED, Held, Inheritance
from hubgate.control.decisions import DecisionLog
from hubgate.control.limits import LimitBook
from hubgate.control.loop import ControlLoop
from hubgate.control.plan import CyclePlanner
from hubgate.control.succession import bequest, held_currents, inherit
from hubgate.devices.model import LimitCheck, Reading
from hubgate.profiles.model import IecState
from hubgate.state import StateHub
from tests.control.test_dispatch import PacedCharger
from tests.control.test_held_fallback import CURRENTS, cycle, planner
from tests.support.loop_site import SimSite, site_config

OCPP = {"cp-1#1", "cp-2#1"}
"""The chargers whose lease lapses to their stored failsafe profile (`bequest`'s `lapsing`)."""


def following(p: CyclePlanner) -> None:
    """cp-1 and cp-2 were checked to follow their limits."""
    p.verification.checked(dict.fromkeys(OCPP, LimitCheck(True, "schedule as sent")))


def reconfiguring() -> CyclePlanner:
    """A leader whose cp-1 and cp-2 were verified at 0 A at start-up (cp-0 unread at 32 A),
    and whose reconfiguration with 6 A (cp-0 read at 6 A) was cut short at the command
    deadline: not verified, maybe applied."""
    p = planner()
    assert cycle(p, 0.0, held_a=6.0) == {0: 32.0, 1: 0.0, 2: 0.0}
    following(p)
    assert bequest(p, OCPP) == {"cp-1#1": 0.0, "cp-2#1": 0.0}  # as verified
    plan = p.plan({}, 1.0)  # cp-1 and cp-2 not read this cycle: still reachable
    assert plan is not None
    verifying = [c for c in plan.commands if c.verify_first]
    assert {c.name: c.failsafe_a for c in verifying} == {"cp-1#1": 6.0, "cp-2#1": 6.0}
    for command in verifying:
        p.verification.configured(command.index, ok=False)
    return p


def test_a_charger_being_reconfigured_is_passed_on_at_the_larger_failsafe() -> None:
    """The old failsafe (0 A) is still verified and in force, the new one (6 A) may have
    reached the charger: the bequest keeps both chargers, at 6 A; once verified at 6 A,
    at 6 A."""
    p = reconfiguring()
    assert [p.connectors[i].failsafe_a for i in (1, 2)] == [0.0, 0.0]  # verified before
    assert not p.connectors[1].failsafe_unverified
    assert bequest(p, OCPP) == {"cp-1#1": 6.0, "cp-2#1": 6.0}
    assert cycle(p, 2.0, held_a=6.0) == {1: 6.0, 2: 6.0}
    assert bequest(p, OCPP) == {"cp-1#1": 6.0, "cp-2#1": 6.0}


def test_a_lowered_failsafe_is_passed_on_at_the_old_one_until_verified() -> None:
    """The other way round: a failsafe being lowered (6 A to 0 A, cp-0 found to hold
    32 A after all) counts at the 6 A still in force until the 0 A is verified."""
    p = planner()
    cycle(p, 0.0, held_a=6.0)
    assert cycle(p, 1.0, held_a=6.0) == {1: 6.0, 2: 6.0}
    following(p)
    p.failsafes.fix(0, 32.0)  # (as a read of 32 A would)
    plan = p.plan({}, 2.0)
    assert plan is not None
    verifying = [c for c in plan.commands if c.verify_first and c.name in OCPP]
    assert {c.name: c.failsafe_a for c in verifying} == {"cp-1#1": 0.0, "cp-2#1": 0.0}
    assert bequest(p, OCPP) == {"cp-1#1": 6.0, "cp-2#1": 6.0}
    for command in verifying:
        p.verification.configured(command.index, ok=True)
    assert bequest(p, OCPP) == {"cp-1#1": 0.0, "cp-2#1": 0.0}


def test_a_successor_counts_the_larger_of_what_was_passed_on_and_its_own_share() -> None:
    """A successor that cannot reach cp-1 and cp-2 counts each, once the old leader's lease
    has lapsed, at the larger of the failsafe passed on with it and the one it would
    configure itself: 6 A passed on while its own share is 0 A (cp-0 unread here: 32 A);
    0 A passed on while its own share is 6 A (a configuration it began may have reached
    the charger). Never at the 0 A it may itself have configured in an earlier epoch."""
    old = reconfiguring()
    passed = bequest(old, OCPP)
    new = planner()  # the standby's, cp-0 not read yet: cp-1 and cp-2 are given 0 A
    cycle(new, 0.0, held_a=6.0)
    assert [new.connectors[i].failsafe_a for i in (1, 2)] == [0.0, 0.0]  # its own, earlier
    new.take_over()
    new.failsafes.fix(0, 32.0)  # cp-0 read at 32 A here
    inherit(new, Inheritance(passed), 10.0)
    new.plan({}, 10.0)  # cp-1 and cp-2 silent from now
    assert list(new.failsafe_a)[1:] == [0.0, 0.0]
    at = 10.0 + 3 * old.site.control.meter_stale_s  # well past their last answer here
    assert [new.verification.reservation(i, at) for i in (1, 2)] == [(6.0, "unreachable")] * 2

    again = planner()  # cp-0 read at 6 A here: cp-1 and cp-2 are given 6 A
    cycle(again, 0.0, held_a=6.0)
    again.take_over()
    inherit(again, Inheritance({"cp-1#1": 0.0, "cp-2#1": 0.0}), 10.0)
    again.plan({}, 10.0)
    assert list(again.failsafe_a)[1:] == [6.0, 6.0]
    assert [again.verification.reservation(i, at) for i in (1, 2)] == [(6.0, "unreachable")] * 2


class Leading:
    """A leader's authority (epoch 1) that keeps what it is to pass on (`Succession`)."""

    def __init__(self) -> None:
        self.failsafes: Mapping[str, float] = {}

    def epoch(self) -> int | None:
        return 1

    def holds(self, epoch: int) -> bool:
        return epoch == 1

    def bequeath(self, failsafes: Mapping[str, float], held: Mapping[str, Held]) -> None:
        self.failsafes = failsafes

    def inherited(self) -> Inheritance:
        return NOTHING_INHERITED


async def test_a_hand_over_passes_on_a_charger_seen_following_since_the_last_cycle(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A charger's check that it follows its limits may come just after a cycle began (an
    OCPP charger's composite schedule, in its station's task): the last bequest before a
    hand-over takes it (`ControlLoop.bequeath_last`), else the successor would reserve
    the charger at its maximum for as long as it cannot reach it."""
    sim = SimSite.build()
    sim.chargers[0] = PacedCharger("cp-1")  # its lease lapses to its stored failsafe
    authority = Leading()
    loop = ControlLoop(
        site_config(),
        sim.devices(),
        limits=LimitBook(),
        decisions=DecisionLog(),
        hub=StateHub(),
        authority=authority,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(loop.run)
        await trio.sleep(5)  # verified, not checked yet
        assert authority.failsafes == {}
        await loop.cycle_ready.wait()
        sim.chargers[0].checked = True  # right after a cycle: no cycle has seen it
        loop.bequeath_last()
        assert authority.failsafes == {"cp-1#1": 6.0}
        nursery.cancel_scope.cancel()


def test_a_command_cut_short_counts_as_sent_in_what_is_passed_on() -> None:
    """A setpoint whose exchange was cut short at the command deadline may still reach the
    charger (an OCPP exchange goes on in its station's task): after a hand-over the
    successor counts it at the larger of that and the last one acknowledged, never below
    what it may be holding (a decrease cut short leaves the higher one)."""
    p = planner()
    cycle(p, 0.0, held_a=6.0)
    cycle(p, 1.0, held_a=6.0)
    following(p)
    p.connectors[1].watch.last_command_a = 0.0  # acknowledged at 0 A before
    plan = p.plan({}, 2.0)
    assert plan is not None
    raised = plan.result.setpoint_a[1]
    assert raised > 0
    p.outcomes(plan, {"cp-1#1": TimeoutError("cut short")}, 2.0, 2.0)
    assert held_currents(p, ["cp-1#1"])["cp-1#1"].current_a == raised
    p.connectors[1].watch.last_command_a = 32.0  # a decrease cut short
    p.outcomes(plan, {"cp-1#1": TimeoutError("cut short")}, 3.0, 3.0)
    assert held_currents(p, ["cp-1#1"])["cp-1#1"].current_a == 32.0


def test_a_first_command_cut_short_after_a_take_over_counts_what_the_leader_before_left() -> None:
    """A new leader's first setpoint to a charger (0 A), cut short at the command deadline
    after its failsafe was verified: the charger may still hold what the leader before left
    it at (16 A, its lease profile), whatever this gateway acknowledged in an earlier epoch
    (0 A): counted, and passed on, at the larger of the two. With nothing passed on, what
    it holds is not known: its maximum, and nothing passed on again."""
    p = planner()
    cycle(p, 0.0, held_a=6.0)
    cycle(p, 1.0, held_a=6.0)
    p.connectors[1].watch.last_command_a = 0.0  # acknowledged at 0 A in its earlier epoch
    p.take_over()
    left = Held(16.0, (16.0, 16.0, 16.0))
    inherit(p, Inheritance({"cp-1#1": 6.0}, handed_over=True, held={"cp-1#1": left}), 10.0)
    later = 10.0 + 3 * p.site.control.meter_stale_s  # cp-1 silent since 10 s
    assert first_setpoint_cut_short(p, 10.0) < 16.0
    assert held_currents(p, ["cp-1#1"])["cp-1#1"].current_a == 16.0
    assert p.verification.reservation(1, later) == (16.0, "unreachable")

    fresh = planner()
    fresh.take_over()
    inherit(fresh, Inheritance({"cp-1#1": 6.0}), 10.0)
    first_setpoint_cut_short(fresh, 10.0)
    assert held_currents(fresh, ["cp-1#1"]) == {}
    assert fresh.verification.reservation(1, later) == (32.0, "unreachable")


def first_setpoint_cut_short(p: CyclePlanner, now: float) -> float:
    """cp-1 answers at `now` drawing 16 A; its failsafe is verified, the setpoint after it
    cut short at the command deadline: that setpoint."""
    reading = Reading(at=now, values=dict.fromkeys(CURRENTS, 16.0), state=IecState.C)
    plan = p.plan({"cp-1#1": reading}, now)
    assert plan is not None
    [first] = [c for c in plan.commands if c.name == "cp-1#1"]
    assert first.verify_first
    p.verification.configured(first.index, ok=True)
    p.outcomes(plan, {"cp-1#1": TimeoutError("cut short")}, now, now)
    return first.current_a
