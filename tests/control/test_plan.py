"""The sans-IO cycle planner over the in-memory site: no nursery, no clock, time a number.

Each test drives `CyclePlanner` one cycle per call (`PlannedSite`): the devices are read
and commanded at the cycle's time, the planner gets the readings and the outcomes.
"""

from __future__ import annotations

import math
import tomllib

import pytest

from hubgate.config.model import SiteConfig
from hubgate.control.authority import Inheritance
from hubgate.control.limits import SITE, AuditAction, Limit, LimitBook, LimitSource
from hubgate.control.plan import CyclePlanner
from hubgate.control.succession import HANDOVER_LAPSE_MARGIN_S, bequest, held_currents, inherit
from hubgate.devices.model import Reading
from hubgate.profiles.model import IecState
from hubgate.state import EventLevel
from tests.support.loop_site import SITE_TOML, PlannedSite, SimSite, commanded, site_config
from tests.support.toml_tables import dc_charger, dc_holding

BOARD_A = 64.0


def test_shares_the_board_and_verifies_failsafe_first() -> None:
    site = PlannedSite.build(SimSite.build())
    first = site.cycle()
    assert first is not None
    assert all(c.verify_first for c in first.commands)  # nothing set before its failsafe
    assert all(c.configured == 1 and c.failsafe_a == 6 for c in site.sim.chargers)
    site.run(4)  # the meter trusted from its first reading: the whole board
    assert BOARD_A / 2 < sum(site.setpoints().values()) <= BOARD_A
    site.run(35)
    sp = site.setpoints()
    assert sum(sp.values()) <= BOARD_A
    assert min(sp.values()) >= 20  # fair: 64 A among three
    assert all(c.configured == 1 for c in site.sim.chargers)
    failsafe = [e for e in site.events if e[2] == "failsafe verified"]
    assert sorted(e[1] for e in failsafe) == ["cp-1#1", "cp-2#1", "cp-3#1"]


def test_only_changed_setpoints_are_sent_to_chargers_that_do_not_pace_themselves() -> None:
    site = PlannedSite.build(SimSite.build())
    site.run(40)
    steady = site.cycle()
    assert steady is not None
    assert steady.commands == []  # nothing changed: nothing to send


def test_a_charger_that_paces_itself_gets_every_setpoint() -> None:
    sim = SimSite.build()
    planner = CyclePlanner(
        site_config(),
        LimitBook(),
        meters=("board-meter",),
        grid_operator_box=True,
        paced=[("cp-2", 1)],
    )
    site = PlannedSite(sim, planner)
    site.run(40)
    steady = site.cycle()
    assert steady is not None
    assert [c.name for c in steady.commands] == ["cp-2#1"]


def test_ev_taking_less_gives_its_headroom_to_others() -> None:
    sim = SimSite.build()
    sim.charger("cp-1").ev_max_a = 8.0
    site = PlannedSite.build(sim)
    site.run(60)
    sp = site.setpoints()
    assert sp["cp-1"] <= 8 + 2  # trimmed to its draw plus headroom
    assert sp["cp-2"] >= 26
    assert sp["cp-3"] >= 26


def test_base_load_in_the_meter_is_followed() -> None:
    site = PlannedSite.build(SimSite.build())
    site.run(40)
    site.sim.meter.base_a = 30.0
    site.run(20)
    assert sum(site.setpoints().values()) <= BOARD_A - 30 + 1
    plan = site.last
    assert plan is not None
    board = site.planner.allocator.node_index("board")
    assert 29 <= max(plan.inputs.base_load_a[3 * board : 3 * board + 3]) <= 31  # type: ignore[index]


def test_meter_lost_degrades_then_recovers_with_hysteresis() -> None:
    site = PlannedSite.build(SimSite.build())
    site.run(40)
    assert sum(site.setpoints().values()) > BOARD_A / 2 + 6
    site.sim.meter.reachable = False
    site.run(5)  # stale after 3 s
    watch = site.planner.meter_watch["board-meter"]
    assert watch.budget_share(site.now) == 0.5
    assert watch.health(site.now).value == "lost"
    assert sum(site.setpoints().values()) <= BOARD_A / 2
    assert site.last is not None
    assert "board meter lost: 50% budget" in site.last.notes
    assert (EventLevel.WARNING, "meter:board-meter") in [e[:2] for e in site.events]
    site.sim.meter.reachable = True
    site.run(3)  # fresh again, still inside the 6 s hysteresis
    assert watch.health(site.now).value == "recovering"
    assert sum(site.setpoints().values()) <= BOARD_A / 2
    site.run(20)
    assert watch.budget_share(site.now) == 1.0
    assert sum(site.setpoints().values()) > BOARD_A / 2 + 6
    assert (EventLevel.INFO, "meter:board-meter", "reachable again") in site.events


def test_unreachable_charger_is_reserved_and_reverified() -> None:
    site = PlannedSite.build(SimSite.build())
    site.run(40)
    lost = site.sim.charger("cp-1")
    held = lost.limit_a
    lost.reachable = False
    site.run(10)
    sp = site.setpoints()
    # verified: it holds its last command (or falls to its 6 A failsafe): the other two
    # share what is left of the board, no more, and still charge
    assert held > 6
    assert sp["cp-2"] + sp["cp-3"] <= BOARD_A - held
    assert sp["cp-2"] + sp["cp-3"] > BOARD_A - 32  # less than its maximum is reserved
    assert lost.limit_a == held  # no command reached it
    assert site.last is not None
    assert f"cp-1#1 unreachable: {held:g} A reserved" in site.last.notes
    assert lost.configured == 1
    lost.reachable = True
    site.run(10)
    assert lost.configured == 2  # failsafe settings configured and verified again
    assert sum(site.setpoints().values()) <= BOARD_A


def test_charger_whose_failsafe_cannot_be_set_is_reserved_and_retried() -> None:
    site = PlannedSite.build(SimSite.build())
    stubborn = site.sim.charger("cp-1")
    stubborn.rejects_failsafe = True
    site.run(40)
    sp = site.setpoints()
    assert stubborn.limit_a == 0  # never commanded
    assert sp["cp-2"] + sp["cp-3"] <= BOARD_A - 32
    assert site.last is not None
    assert "cp-1#1 failsafe not verified: 32 A reserved" in site.last.notes
    stubborn.rejects_failsafe = False
    site.run(20)
    assert stubborn.configured == 1
    assert stubborn.limit_a > 0
    assert not site.last.notes


def test_a_failsafe_configuration_cut_short_is_asked_for_again_each_second_not_each_cycle() -> None:
    config = site_config()
    fast = config.model_copy(
        update={"control": config.control.model_copy(update={"cycle_s": 0.25})}
    )
    sim = SimSite.build()
    planner = CyclePlanner(fast, LimitBook(), meters=(sim.meter.id,), grid_operator_box=True)
    site = PlannedSite(sim, planner, cut_short={"cp-1"})
    tried = []
    for _ in range(12):
        plan = site.cycle()
        assert plan is not None
        tried.append([c.name for c in plan.commands if c.verify_first])
    # cp-2 and cp-3 are verified in the first cycle; cp-1's exchange goes on past the command
    # deadline every time (an OCPP one then finishes in its station's task): tried once a second
    once_a_second = [["cp-1#1"], [], [], []]
    assert tried == [["cp-1#1", "cp-2#1", "cp-3#1"], [], [], [], *once_a_second * 2]
    assert sim.charger("cp-1").configured == 0
    site.cut_short.clear()
    site.run(1)
    assert sim.charger("cp-1").configured == 1


def test_grid_operator_step_is_audited_and_followed() -> None:
    site = PlannedSite.build(SimSite.build())
    site.run(30)
    site.sim.box.percent = 30.0  # 30 % of 3 x 230 V x 100 A = 20.7 kW
    site.run(5)
    assert site.last is not None
    assert site.last.inputs.grid_operator_w == 20_700
    total_kw = sum(site.setpoints().values()) * 3 * 230 / 1000
    assert total_kw <= 20.7 + 0.1
    limits = site.planner.limits
    audit = [e for e in limits.audit() if e.source is LimitSource.GRID_OPERATOR]
    assert [e.limit.power_kw for e in audit] == [69.0, 20.7]
    assert all(e.action is AuditAction.SET and e.target == SITE for e in audit)
    site.sim.box.reachable = False  # a silent box does not lift the curtailment
    site.run(10)
    last = limits.audit()[-1]
    assert (last.limit.power_kw, last.origin) == (
        20.7,
        "grid-operator-box: silent, holding the last limit",
    )
    assert sum(site.setpoints().values()) * 3 * 230 / 1000 <= 20.7 + 0.1
    said = [m for _, subject, m in site.events if subject == "grid-operator"]
    unreachable, lost = said  # the box as a device, and what its silence means
    assert unreachable.startswith("unreachable (")
    assert lost == "silent for 4 s: holding the last limit 20.7 kW for up to 900 s"


def test_api_and_modbus_server_limits_are_applied() -> None:
    site = PlannedSite.build(SimSite.build())
    site.run(40)
    limits, now = site.planner.limits, site.now
    limits.set(
        "board", LimitSource.API, Limit(phase_a=(30, 30, 30)), now=now, lease_s=60, origin="t"
    )
    limits.set(
        "cp-2#1",
        LimitSource.MODBUS_SERVER,
        Limit(phase_a=(10, 10, 10)),
        now=now,
        lease_s=60,
        origin="t",
    )
    site.run(5)
    sp = site.setpoints()
    assert sum(sp.values()) <= 30
    assert sp["cp-2"] <= 10
    site.run(70)  # both leases lapse
    assert sum(site.setpoints().values()) > 40


def test_a_new_ev_starts_once_the_others_are_seen_to_follow_their_decrease() -> None:
    """The current freed by lowering the others is confirmed by their draw after their
    reaction time (2 s), so the new EV starts within a few cycles, not after `settle_s`
    (10 s); the board never carries more than its limit meanwhile."""
    sim = SimSite.build()
    newcomer = sim.charger("cp-3")
    newcomer.connected = False
    site = PlannedSite.build(sim)
    site.run(40)
    assert site.setpoints() == {"cp-1": 32, "cp-2": 32, "cp-3": 0}
    newcomer.connected = True
    connected_at = site.now
    started_at = None
    peak = 0.0
    while site.now - connected_at < 20:
        site.cycle()
        peak = max(peak, sim.meter.current(site.now))
        if started_at is None and site.setpoints()["cp-3"] > 0:
            started_at = site.now
    assert started_at is not None
    assert started_at - connected_at <= 5  # reaction 2 s, a reading, a cycle
    assert peak <= BOARD_A + 1e-9
    assert min(site.setpoints().values()) >= 21  # fair again: 64 A among three


def test_a_failed_allocation_keeps_the_last_setpoints_and_raises_an_alarm() -> None:
    site = PlannedSite.build(SimSite.build())
    site.run(10)
    before = site.setpoints()
    site.sim.meter.base_a = math.nan
    assert site.cycle() is None
    assert site.setpoints() == before
    assert site.events[-1][:2] == (EventLevel.ALARM, "allocation")


def test_a_charger_not_following_is_reserved_at_its_maximum_with_an_alarm() -> None:
    sim = SimSite.build()
    sim.charger("cp-1").ignores_limits = True
    site = PlannedSite.build(sim)
    site.run(40)
    sp = site.setpoints()
    assert sp["cp-1"] == 0  # not served: its 32 A are reserved instead
    assert sp["cp-2"] + sp["cp-3"] <= BOARD_A - 32
    assert min(sp["cp-2"], sp["cp-3"]) >= 12
    alarms = [e for e in site.events if e[0] is EventLevel.ALARM]
    assert alarms == [
        (
            EventLevel.ALARM,
            "cp-1#1",
            "not following its limit, reserved at its maximum: ignores its limit",
        )
    ]
    plan = site.last
    assert plan is not None
    assert "cp-1#1 not following its limit: 32 A reserved" in plan.notes


def test_a_charger_not_following_does_not_lift_a_dimming_by_the_14a_floor() -> None:
    """The §14a floor comes on top of the rest of the site, not of a connector reserved at
    its maximum: that is EV load (all three chargers are §14a devices here)."""
    marked = SITE_TOML.replace(
        "connectors = [{ id = 1", "paragraph_14a = true\nconnectors = [{ id = 1"
    )
    sim = SimSite.build()
    sim.charger("cp-1").ignores_limits = True
    sim.box.percent = 10.0  # dimmed: 10 % of 69 kW
    planner = CyclePlanner(
        SiteConfig.model_validate(tomllib.loads(marked)),
        LimitBook(),
        meters=(sim.meter.id,),
        grid_operator_box=True,
    )
    site = PlannedSite(sim, planner)
    site.run(40)
    plan = site.last
    assert plan is not None
    assert "cp-1#1 not following its limit: 32 A reserved" in plan.notes
    # P_min for 3 devices: 4.2 + 2 x 0.75 x 4.2 = 10.5 kW, not 10.5 kW on top of cp-1's 22 kW
    assert plan.inputs.grid_operator_w == pytest.approx(10_500)
    assert site.setpoints() == {"cp-1": 0, "cp-2": 0, "cp-3": 0}


DC_SITE = (
    """
[site]
name = "dc"
[grid]
phase_current_limit_a = 400
[[nodes]]
id = "hpc"
kind = "feeder"
phase_current_limit_a = 300
"""
    + dc_charger("hpc-1", "hpc", dc_holding(150, idle_kw=0.6))
    + "[control]\ncycle_s = 1\n"
)


def test_an_idle_dc_charger_is_offered_its_minimum_and_its_idle_draw_is_reserved() -> None:
    """A DC charger given 0 W starts no session (NoFreePower, evcc-io/evcc#28493): idle,
    it is offered its minimum and no more; its cabinet's idle draw is counted on every
    node above it (none is metered here)."""
    site = SiteConfig.model_validate(tomllib.loads(DC_SITE))
    planner = CyclePlanner(site, LimitBook())
    minimum = site.chargers[0].connectors[0].min_current_a
    idle = Reading(at=0.0, state=IecState.A)
    for now in (0.0, 1.0):
        plan = commanded(planner, {"hpc-1#1": idle}, now)
    assert minimum <= plan.result.setpoint_a[0] < minimum + 0.2  # its minimum, on the step
    feeder = planner.allocator.node_index("hpc")
    base = plan.inputs.base_load_a[3 * feeder : 3 * feeder + 3]
    assert list(base) == pytest.approx([600 / (0.99 * 3 * 230)] * 3)


def test_an_idle_dc_charger_whose_minimum_was_taken_back_gets_it_as_soon_as_there_is_room() -> None:
    """Held at its minimum while idle, then paused for lack of room: its minimum comes back
    with the room, not after the pause rules' 120 s, so an EV that arrived meanwhile (its
    station shows Unavailable until it gets its minimum) starts."""
    site = SiteConfig.model_validate(tomllib.loads(DC_SITE))
    planner = CyclePlanner(site, LimitBook())
    minimum = site.chargers[0].connectors[0].min_current_a
    idle = Reading(at=0.0, state=IecState.F)  # Unavailable: NoFreePower, EV or not
    offered = []
    for now in range(12):
        if now == 2:
            limit = Limit(phase_a=(1, 1, 1))
            planner.limits.set("hpc", LimitSource.API, limit, now=now, lease_s=4, origin="t")
        plan = commanded(planner, {"hpc-1#1": idle}, float(now))
        offered.append(plan.result.setpoint_a[0] >= minimum)
    # reserved until its failsafe is verified (its first cycle), offered, taken back while
    # the 1 A limit holds (2 s to 6 s), offered again at once
    assert offered == [False, True, False, False, False, False, True, True, True, True, True, True]


def test_a_dc_hold_whose_take_back_failed_gets_its_minimum_with_the_room() -> None:
    """As above, but the command taking its minimum back failed (an OCPP exchange cut short
    at the command deadline): it is the allocator's decision that ends the idle session,
    not what went out, so the pause rules (120 s off) do not hold it back either."""
    site = SiteConfig.model_validate(tomllib.loads(DC_SITE))
    planner = CyclePlanner(site, LimitBook())
    minimum = site.chargers[0].connectors[0].min_current_a
    idle = Reading(at=0.0, state=IecState.F)
    offered = []
    for now in range(12):
        if now == 2:
            limit = Limit(phase_a=(1, 1, 1))
            planner.limits.set("hpc", LimitSource.API, limit, now=now, lease_s=4, origin="t")
        if now == 2:  # the take-back is decided, but its command fails
            plan = planner.plan({"hpc-1#1": idle}, float(now))
            assert plan is not None
            planner.outcomes(plan, {c.name: TimeoutError() for c in plan.commands}, now, now)
        else:
            plan = commanded(planner, {"hpc-1#1": idle}, float(now))
        offered.append(plan.result.setpoint_a[0] >= minimum)
    assert offered == [False, True, False, False, False, False, True, True, True, True, True, True]


def test_a_new_leader_counts_on_the_failsafes_its_predecessor_verified() -> None:
    """The leader bequeaths the connectors whose failsafe it verified and saw follow their
    limits; a new leader that cannot reach one of them yet reserves its failsafe current,
    not its maximum, once the old leader's lease on it has lapsed (a charger keeps its
    stored profiles while offline: OCPP 1.6 §3.13.6, 2.0.1 K06/K07), and after a hand-over
    until then the current the old leader last commanded it (its lease profile)."""
    sim = SimSite.build()
    for charger in sim.chargers:
        charger.checked = charger.id != "cp-2"  # cp-2 never checked: not counted on
    old = PlannedSite.build(sim)
    old.run(40)
    everyone = {"cp-1#1", "cp-2#1", "cp-3#1"}
    left = bequest(old.planner, everyone)
    assert left == {"cp-1#1": 6.0, "cp-3#1": 6.0}  # each with the failsafe current verified
    assert bequest(old.planner, {"cp-2#1"}) == {}  # only leases that lapse count
    held = held_currents(old.planner, left)
    assert held.keys() == left.keys()
    setpoints = {f"{k}#1": v for k, v in old.setpoints().items() if f"{k}#1" in left}
    assert {name: h.current_a for name, h in held.items()} == setpoints
    assert 0 < max(held["cp-1#1"].draw_a) <= held["cp-1#1"].current_a + 1  # it follows
    sim.charger("cp-1").reachable = sim.charger("cp-2").reachable = False
    lease_s = old.planner.site.control.lease_s
    for handed_over in (False, True):
        new = PlannedSite.build(sim)  # the standby's planner, leading from now on
        # a take-over comes after the device leases ran out, a hand-over at once
        new.now = old.now + (0.0 if handed_over else lease_s + 1)
        new.planner.take_over()
        inherit(new.planner, Inheritance(left, handed_over), new.now)
        if handed_over:
            new.run(lease_s + HANDOVER_LAPSE_MARGIN_S - 1)
            assert new.last is not None
            assert "cp-1#1 unreachable: 32 A reserved" in new.last.notes  # may still run
            assert new.setpoints()["cp-3"] == 0  # two maximums reserved leave nothing
            with_held = PlannedSite.build(sim)  # the release carried cp-1's current
            with_held.now = new.now
            with_held.planner.take_over()
            inherit(with_held.planner, Inheritance(left, True, held), with_held.now)
            with_held.run(lease_s + HANDOVER_LAPSE_MARGIN_S - 1)
            assert with_held.last is not None
            amps = held["cp-1#1"].current_a
            assert amps < 32
            assert f"cp-1#1 unreachable: {amps:g} A reserved" in with_held.last.notes
            # its draw, which the board meter shows, is counted as its own, not base load
            board = 3 * with_held.planner.allocator.node_index("board")
            base_held = max(with_held.last.inputs.base_load_a[board : board + 3])
            base_max = max(new.last.inputs.base_load_a[board : board + 3])
            assert base_held <= base_max - (32 - amps) - 0.8 * min(held["cp-1#1"].draw_a)
        new.run(20)
        assert new.last is not None
        assert "cp-1#1 unreachable: 6 A reserved" in new.last.notes
        assert "cp-2#1 unreachable: 32 A reserved" in new.last.notes
        assert new.setpoints()["cp-3"] >= 12  # the board less both draws and reservations
        # cp-1 passed on until verified here, cp-3 verified and checked here
        assert bequest(new.planner, everyone) == {"cp-1#1": 6.0, "cp-3#1": 6.0}
