"""What a leader passes on about its chargers' failsafes while it reconfigures them, and what
its successor counts them at (`control.succession`), sans-IO.

The site of test_held_fallback: cp-0's device holds its own fallback (32 A until read, then
6 A), cp-1 and cp-2 are OCPP chargers on 20 A per phase. At start-up cp-0 counts at 32 A,
so cp-1 and cp-2 are configured with 0 A; once cp-0 reads 6 A they are reconfigured with
6 A. Until a reconfiguration is verified the charger holds the old failsafe profile, and a
reconfiguration cut short may have reached it: whoever counts on it meanwhile counts the
larger of the two."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping

import pytest
import trio
import trio.testing

from hubgate.config.model import SiteConfig
from hubgate.control.authority import NOTHING_INHERITED, Held, Inheritance
from hubgate.control.decisions import DecisionLog
from hubgate.control.limits import LimitBook
from hubgate.control.loop import ControlLoop
from hubgate.control.plan import CyclePlanner
from hubgate.control.succession import bequest, held_currents, inherit
from hubgate.devices.model import AppliedLimit, LimitCheck, Reading
from hubgate.profiles.model import IecState
from hubgate.state import StateHub
from tests.control.test_dispatch import PacedCharger
from tests.control.test_held_fallback import CURRENTS, cycle, planner
from tests.support.ha_harness import site_file
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


class HandBack:
    """The test cluster's site (tests/support/ha_harness: a 70 A board under an 80 A, 55 kW
    connection with 10 A base load; KEBAs cp-2 and cp-4 on Modbus, OCPP stations cp-1 and
    cp-3) as a gateway is handed the lead back: every EV draws all its charger allows,
    17 A as the leader before left them. The stations are still redialling; cp-3 comes
    back first, its status before its first MeterValues."""

    NAMES = ("cp-1#1", "cp-2#1", "cp-3#1", "cp-4#1")

    def __init__(self) -> None:
        ports = {"cp-2": 1502, "cp-4": 1504, "meter-grid": 1600, "meter-board": 1601}
        site = SiteConfig.model_validate(tomllib.loads(site_file(ports)))
        self.planner = CyclePlanner(site, LimitBook(), meters=("meter-grid", "meter-board"))
        self.allowed = dict.fromkeys(self.NAMES, 17.0)
        """What each charger allows its EV (the leader before commanded 17 A)."""
        self.plugged = set(self.NAMES)
        self.paused: set[str] = set()
        """EVs plugged in, not ready (B): drawing nothing."""
        self.stations: dict[str, bool] = {}
        """The stations back, whether measured yet."""
        self.sent: list[dict[str, float]] = []

    def handed_back(self) -> None:
        """Ten seconds as the standby (reading the KEBAs and the meters), then the lead taken
        over and handed back: cp-1 and cp-3 held at 17 A by the leader before."""
        for k in range(40):
            self.cycle(k * 0.25, leading=False)
        self.planner.take_over()
        held = {name: Held(17.0, (17.0, 17.0, 17.0)) for name in ("cp-1#1", "cp-3#1")}
        inherit(
            self.planner, Inheritance(dict.fromkeys(held, 6.0), handed_over=True, held=held), 10.0
        )

    def draw(self, name: str) -> float:
        return self.allowed[name] if name in self.plugged - self.paused else 0.0

    def cycle(self, now: float, *, leading: bool = True, cut_short: str = "") -> None:
        """One cycle: its commands applied (as leader), the one to `cut_short` not (its
        failsafe verified all the same)."""
        board = sum(map(self.draw, self.NAMES))
        readings: dict[str, object] = {
            "meter:meter-board": Reading(at=now, values=dict.fromkeys(CURRENTS, board)),
            "meter:meter-grid": Reading(at=now, values=dict.fromkeys(CURRENTS, board + 10)),
        }
        for name in ("cp-2#1", "cp-4#1", *self.stations):
            measured = self.stations.get(name, True)
            values = dict.fromkeys(CURRENTS, self.draw(name)) if measured else {}
            state = (
                IecState.A
                if name not in self.plugged
                else IecState.B
                if name in self.paused
                else IecState.C
            )
            readings[name] = Reading(at=now, values=values, state=state)
        plan = self.planner.plan(readings, now)
        assert plan is not None
        if not leading:
            return
        for command in plan.commands:
            if command.verify_first:
                self.planner.verification.configured(command.index, ok=True)
        results: dict[str, object] = {
            c.name: AppliedLimit(c.current_a, 3, c.current_a == 0, now) for c in plan.commands
        }
        if cut_short in results:
            results[cut_short] = TimeoutError("cut short at the command deadline")
        self.planner.outcomes(plan, results, now, now)
        for name, outcome in results.items():
            if isinstance(outcome, AppliedLimit):
                self.allowed[name] = outcome.current_a
        self.sent.append({c.name: c.current_a for c in plan.commands})
        board = sum(map(self.draw, self.NAMES))  # what the EVs draw from now
        assert board <= 70.0 + 1e-9
        assert (board + 10) * 230 * 3 <= 55_000 + 1e-6


@pytest.mark.parametrize("cut_short", ["", "cp-3#1"])
def test_a_station_back_with_its_status_alone_keeps_the_draw_passed_on(cut_short: str) -> None:
    """Its status comes before its first MeterValues: its draw is not known yet, not 0. Counted
    at 0, the meters showed its 17 A as base load and the KEBAs beside it were lowered to
    11-12 A and cp-3 itself commanded 0 A (the test cluster's hand-back, session 14, docs/
    ha.md). It keeps the draw the leader before last read until measured here, whether its
    first setpoint lands or is cut short (its failsafe verified all the same)."""
    site = HandBack()
    site.handed_back()
    for k in range(12):
        now = 10.0 + k * 0.25
        if k == 4:
            site.stations["cp-3#1"] = False  # back: its status, no values yet
        if k == 8:
            site.stations["cp-3#1"] = True
        site.cycle(now, cut_short=cut_short if k == 4 else "")
    kebas = [a for sent in site.sent for name, a in sent.items() if name in ("cp-2#1", "cp-4#1")]
    assert min(kebas) >= 17.0
    assert all(sent["cp-3#1"] >= 6.0 for sent in site.sent if "cp-3#1" in sent)
    assert any("cp-3#1" in sent for sent in site.sent[4:])


@pytest.mark.parametrize("state", [IecState.A, IecState.B])
def test_a_station_back_without_its_ev_drawing_is_not_counted_at_the_draw_passed_on(
    state: IecState,
) -> None:
    """Its EV left (A) or paused (B: plugged in, not ready, drawing nothing; IEC 61851-1)
    while the station redialled: its status says it draws nothing, so from then on the draw
    the leader before read is not counted. Counted in A, it hid 17 A of base load: the
    KEBAs' EVs drew 81 A through the 70 A board once the KEBAs could rise; in B, 80.7 A were
    commanded through it (each EV may take what its charger allows). Before its status
    comes, nothing says so: the last reading passed on counts (86 A commanded meanwhile, as
    on main: docs/ha.md)."""
    site = HandBack()
    site.handed_back()
    if state is IecState.A:
        site.plugged.discard("cp-3#1")
    else:
        site.paused.add("cp-3#1")
    for k in range(24):
        if k == 4:
            site.stations["cp-3#1"] = False  # back: its status, no values yet
        site.cycle(10.0 + k * 0.25)
        if k >= 4:
            assert sum(site.allowed.values()) <= 70.0 + 1e-9  # what the chargers allow
