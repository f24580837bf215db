"""The failsafe current each connector is configured with fits every node's limit in force:
what the chargers fall back to without hubgate never takes a node over it."""

from __future__ import annotations

import math
import tomllib
from array import array
from collections.abc import Callable, Collection, Mapping

import pytest

from hubgate._core import AllocationInputError, ConnectorPaths, TopologyError
from hubgate.config.model import SiteConfig
from hubgate.control.limits import SITE, Limit, LimitBook, LimitSource
from hubgate.control.plan import CyclePlanner
from hubgate.devices.model import AppliedLimit, HeldCurrent, Reading
from hubgate.profiles.model import IecState, Quantity

THREE = (0, 1, 2)


def _share(
    paths: ConnectorPaths,
    room: list[list[float]],
    *,
    fixed: dict[int, float] | None = None,
    session: int = 0,
    holds: int = 0,
    may_hold: dict[int, float] | None = None,
) -> list[float]:
    """`fixed`: the fixed failsafes by connector; `session`/`holds`: the connectors with a
    session / holding the failsafe, as bits; `may_hold`: what they may fall back to now,
    by connector (else 6 A, as at start: the most a leader before configured)."""
    n = len(paths)
    fixed_a = [(fixed or {}).get(i, math.nan) for i in range(n)]
    flags = [[bool(bits >> i & 1) for i in range(n)] for bits in (session, holds)]
    now_a = [(may_hold or {}).get(i, 6.0) for i in range(n)]
    room_a = [a for node in room for a in node]
    return list(paths.share_failsafe(fixed_a, *flags, now_a, room_a, 6.0))


def test_the_charger_zoo_fits_its_connection_and_its_curtailment() -> None:
    """The zoo's 104 three-phase connectors at 6 A take 624 A per phase: 96 fit its 400 kW
    (580 A per phase), 38 the grid operator's 40 % (232 A), the ones with an EV first."""
    paths = ConnectorPaths(1, [(0,)] * 104, [THREE] * 104)
    odd = sum(1 << i for i in range(1, 104, 2))
    granted = _share(paths, [[580.0] * 3], session=odd)
    assert sum(1 for a in granted if a) == 96
    curtailed = _share(paths, [[232.0] * 3], session=odd)
    assert sum(1 for a in curtailed if a) == 38
    assert all(curtailed[i] == 6.0 for i in range(1, 76, 2))  # 38 with sessions
    assert not any(curtailed[i] for i in range(0, 104, 2))


def test_every_node_on_the_path_and_only_the_phases_drawn_count() -> None:
    room = [[20.0, 20.0, 20.0], [13.0, 13.0, 6.0]]  # the connection, a board below it
    # three-phase; one phase L1; one phase L3 (the board's L3 is full); the connection's L1
    # is full for the last
    on = [THREE, (0,), (2,), THREE, THREE]
    paths = ConnectorPaths(2, [(1, 0), (1, 0), (1, 0), (0,), (0,)], on)
    assert _share(paths, room, holds=0b11111) == [6.0, 6.0, 0.0, 6.0, 0.0]


def test_setpoints_count_on_the_phases_they_are_drawn_on() -> None:
    """A three-phase connector wired L2L3L1 set on one phase draws on grid L2 (its L1); a
    one-phase EV at a three-phase connector on its phase alone, whatever it is set on."""
    paths = ConnectorPaths(2, [(1, 0), (1, 0), (0,)], [(1, 2, 0), (2,), THREE])
    setpoints = array("d", [16.0, 10.0, 6.0])
    assert list(paths.sum_setpoints(setpoints, [3, 1, 3], [-1, -1, -1])) == [
        *(22.0, 22.0, 32.0),
        *(16.0, 16.0, 26.0),
    ]
    assert list(paths.sum_setpoints(setpoints, array("B", [1, 1, 3]), array("b", [-1, -1, 0]))) == [
        *(6.0, 16.0, 10.0),
        *(0.0, 16.0, 10.0),
    ]
    with pytest.raises(TopologyError, match="no grid phase 3"):
        paths.sum_setpoints(setpoints, [3, 1, 3], [-1, -1, 3])
    with pytest.raises(AllocationInputError, match="phases: 2 values"):
        paths.sum_setpoints(setpoints, [3, 1], [-1, -1, -1])


def test_a_fixed_failsafe_counts_first_and_a_new_grant_needs_more_room() -> None:
    paths = ConnectorPaths(1, [(0,), (0,)], [THREE, THREE])
    # the device-set one takes its 6 A first; 7 A is left, one more fits only with 7 A
    assert _share(paths, [[13.0] * 3], fixed={1: 6.0}) == [6.0, 6.0]
    assert _share(paths, [[12.5] * 3], fixed={1: 6.0}) == [0.0, 6.0]
    assert _share(paths, [[12.5] * 3], fixed={1: 6.0}, holds=0b01) == [6.0, 6.0]
    # room or not, and what it is fixed at
    assert _share(paths, [[1.0] * 3], fixed={1: 6.0}, holds=0b01) == [0.0, 6.0]
    assert _share(paths, [[16.0] * 3], fixed={1: 10.0}, holds=0b01) == [6.0, 10.0]
    assert _share(paths, [[15.0] * 3], fixed={1: 10.0}, holds=0b01) == [0.0, 10.0]
    assert _share(paths, [[6.0] * 3], fixed={1: 0.0}, holds=0b01) == [6.0, 0.0]  # pauses


def test_an_increase_waits_for_the_decreases_it_needs_room_from() -> None:
    """The chargers take their new failsafes in any order and hubgate may stop between two:
    connector 1's EV is to have the board's one 6 A that connector 0 holds; until 0's 0 A
    is verified both might fall back to 6 A, so 1 keeps 0 A meanwhile (0's decrease does
    not wait); connector 2 on another board is not held back."""
    paths = ConnectorPaths(3, [(1, 0), (1, 0), (2, 0)], [THREE] * 3)
    room = [[20.0] * 3, [10.0] * 3, [10.0] * 3]
    assert _share(paths, room, session=0b010, holds=0b001, may_hold={0: 6.0, 1: 0.0, 2: 0.0}) == [
        0.0,
        0.0,
        6.0,
    ]
    assert _share(paths, room, session=0b010, holds=0b100, may_hold={0: 0.0, 1: 0.0}) == [
        0.0,
        6.0,
        6.0,
    ]


def test_paths_the_site_does_not_have_and_columns_that_do_not_fit_are_errors() -> None:
    with pytest.raises(TopologyError, match="connector 0: no node 2"):
        ConnectorPaths(2, [(2, 0)], [THREE])
    with pytest.raises(TopologyError, match="no grid phase 3"):
        ConnectorPaths(1, [(0,)], [(3,)])
    paths = ConnectorPaths(1, [(0,)], [THREE])
    with pytest.raises(AllocationInputError, match="fixed_a: 2 values where 1"):
        paths.share_failsafe([math.nan] * 2, [False], [False], [0.0], [1.0] * 3, 6.0)
    with pytest.raises(AllocationInputError, match="room_a: 6 values where 3"):
        paths.share_failsafe([math.nan], [False], [False], [0.0], [1.0] * 6, 6.0)
    with pytest.raises(AllocationInputError, match="may_hold_a: 2 values where 1"):
        paths.share_failsafe([math.nan], [False], [False], [0.0] * 2, [1.0] * 3, 6.0)
    with pytest.raises(AllocationInputError, match="per_connector: 2 values where 1"):
        paths.sum_up([(1.0, 2.0, 3.0)] * 2)
    two = ConnectorPaths(2, [(1, 0), (0,)], [(2,), THREE])
    assert list(two.sum_up([(0, 0, 4), (1, 2, 3)])) == [1.0, 2.0, 7.0, 0.0, 0.0, 4.0]


SITE_TOML = """
[site]
name = "failsafe budget"
[grid]
phase_current_limit_a = 63
[grid_operator]
source = "api"
[control]
failsafe_current_a = 6
meter_stale_s = 3
{chargers}
"""

CHARGER = """
[[chargers]]
id = "cp-{i}"
node = "grid"
ocpp = {{ identity = "CP-{i}" }}
connectors = [{{ id = 1, max_current_a = 32 }}]
"""


def plan_and_send(
    planner: CyclePlanner,
    readings: Mapping[str, Reading],
    now: float,
    held: Callable[[int], HeldCurrent | None] = lambda _: None,
) -> dict[int, float]:
    """One cycle: every command applied as sent, every failsafe verified (`held`: what the
    device of the connector at an index holds, as read); the failsafe each connector
    verified was told, by index."""
    plan = planner.plan(readings, now)
    assert plan is not None
    told = {}
    for command in plan.commands:
        if command.verify_first:
            told[command.index] = command.failsafe_a
            planner.verification.configured(command.index, ok=True, held=held(command.index))
    results = {c.name: AppliedLimit(c.current_a, 3, c.current_a == 0, now) for c in plan.commands}
    planner.outcomes(plan, results, now, now)
    return told


def idle_readings(now: float, plugged: Collection[int], n: int = 10) -> dict[str, Reading]:
    """Readings of `n` OCPP connectors drawing nothing, an EV in at those `plugged`."""
    values = dict.fromkeys((Quantity.CURRENT_L1, Quantity.CURRENT_L2, Quantity.CURRENT_L3), 0.0)
    return {
        f"cp-{i}#1": Reading(
            at=now, values=values, state=IecState.B if i in plugged else IecState.A
        )
        for i in range(n)
    }


def test_a_curtailment_reconfigures_the_failsafes_that_no_longer_fit() -> None:
    """Ten OCPP chargers on a 63 A connection, four with an EV: all ten fit at 6 A; under a
    15 kW limit (21.7 A per phase) three do, the ones with an EV, and the others are told
    0 A as their failsafe (the fourth EV too: no room) with their next setpoint, and 6 A
    again once the limit is lifted."""
    site = SiteConfig.model_validate(
        tomllib.loads(SITE_TOML.format(chargers="".join(CHARGER.format(i=i) for i in range(10))))
    )
    planner = CyclePlanner(site, LimitBook())
    plugged = {1, 4, 6, 9}

    def cycle(now: float) -> dict[int, float]:
        return plan_and_send(planner, idle_readings(now, plugged), now)

    assert cycle(0.0) == dict.fromkeys(range(10), 6.0)
    assert cycle(1.0) == {}
    planner.limits.set(SITE, LimitSource.API, Limit(power_kw=15), now=2.0, lease_s=None, origin="t")
    told = cycle(2.0)
    assert sorted(i for i, a in told.items() if a == 0.0) == [0, 2, 3, 5, 7, 8, 9]
    assert [planner.failsafe_a[i] for i in sorted(plugged)] == [6.0, 6.0, 6.0, 0.0]
    assert sum(planner.failsafe_a) <= 15_000 / 3 / 230  # on every phase
    assert cycle(3.0) == {}
    planner.limits.clear(SITE, LimitSource.API, now=4.0, origin="t")
    assert cycle(4.0) == dict.fromkeys([0, 2, 3, 5, 7, 8, 9], 6.0)


def test_a_larger_failsafe_counts_from_when_it_is_asked_for() -> None:
    """A try at a larger failsafe current may reach the charger before anything says so (an
    OCPP exchange cut short at the command deadline goes on): from the try on, the charger
    counts as falling back to it, unreachable too, until a verification says what it holds."""
    site = SiteConfig.model_validate(
        tomllib.loads(SITE_TOML.format(chargers="".join(CHARGER.format(i=i) for i in range(10))))
    )
    planner = CyclePlanner(site, LimitBook())
    verification = planner.verification
    plan_and_send(planner, idle_readings(0.0, ()), 0.0)
    planner.limits.set(SITE, LimitSource.API, Limit(power_kw=15), now=1.0, lease_s=None, origin="t")
    assert (
        plan_and_send(planner, idle_readings(1.0, ()), 1.0)[9] == 0.0
    )  # no room left for the last

    assert verification.fallback_a(9) == 0.0
    planner.limits.clear(SITE, LimitSource.API, now=2.0, origin="t")
    plan = planner.plan(idle_readings(2.0, ()), 2.0)  # 6 A asked for, not verified yet
    assert plan is not None
    assert [(c.failsafe_a, c.verify_first) for c in plan.commands if c.index == 9] == [(6.0, True)]
    assert verification.fallback_a(9) == 6.0
    verification.configured(9, ok=False)  # refused, or cut short: it may hold 6 A
    assert verification.fallback_a(9) == 6.0
    readings = idle_readings(9.0, ())
    del readings["cp-9#1"]  # unreachable since 2 s
    planner.plan(readings, 9.0)
    assert verification.reservation(9, 9.0) == (6.0, "unreachable")
    planner.limits.set(SITE, LimitSource.API, Limit(power_kw=15), now=9.0, lease_s=None, origin="t")
    told = plan_and_send(planner, idle_readings(10.0, ()), 10.0)
    assert told[9] == 0.0
    assert verification.fallback_a(9) == 0.0  # verified at 0 A: what was asked before is gone


def may_fall_back_to(planner: CyclePlanner) -> float:
    """What the connectors may fall back to now, summed (`Verification.fallback_a`: each
    configuration asked for may land first, none may)."""
    return sum(map(planner.verification.fallback_a, range(len(planner.connectors))))


def test_an_increase_waits_until_the_decrease_that_makes_room_for_it_is_verified() -> None:
    """Two OCPP chargers under a 10 A limit: one 6 A failsafe fits, cp-0's (by index). An EV
    at cp-1 is to have it instead: cp-0 is told 0 A first; cp-1 is told 6 A only once cp-0's
    0 A is verified, else the two configurations land in any order and hubgate may stop
    between them, both at 6 A. While cp-0 cannot be reached, its 6 A keeps counting."""
    chargers = "".join(CHARGER.format(i=i) for i in range(2))
    site = SiteConfig.model_validate(tomllib.loads(SITE_TOML.format(chargers=chargers)))
    planner = CyclePlanner(site, LimitBook())
    planner.limits.set(
        SITE, LimitSource.API, Limit(phase_a=(10.0,) * 3), now=0.0, lease_s=None, origin="t"
    )
    assert plan_and_send(planner, idle_readings(0.0, (), n=2), 0.0) == {0: 6.0, 1: 0.0}

    def plan(now: float, reachable: Collection[int] = (0, 1)) -> dict[int, float]:
        """One cycle; its failsafe configurations go out (in flight, as `Dispatch` runs
        them aside), none verified yet."""
        readings = idle_readings(now, {1}, n=2)
        plan = planner.plan({k: v for k, v in readings.items() if int(k[3]) in reachable}, now)
        assert plan is not None
        results = {
            c.name: AppliedLimit(c.current_a, 3, c.current_a == 0, now) for c in plan.commands
        }
        planner.outcomes(plan, results, now, now)
        assert may_fall_back_to(planner) <= 10.0
        told = {c.index: c.failsafe_a for c in plan.commands if c.verify_first}
        for index in told:
            planner.connectors[index].verify_tried_at = math.inf
        return told

    def ended(index: int, now: float, ok: bool) -> None:
        """A configuration in flight ends."""
        failsafe = planner.failsafe_a[index]
        planner.verification.configured(index, ok=ok, failsafe_a=failsafe if ok else None)
        planner.connectors[index].verify_ended(now, ok)

    assert plan(1.0) == {0: 0.0}  # cp-1's 6 A waits
    assert planner.failsafe_a[1] == 0.0
    assert plan(2.0) == {}  # cp-0's try is in flight
    ended(0, 2.5, ok=False)  # cut short: it may hold 6 A or 0 A
    assert plan(9.0, reachable={1}) == {}  # unreachable since 2 s: it may still hold 6 A
    assert planner.verification.reservation(0, 9.0) == (6.0, "unreachable")
    assert plan(10.0) == {0: 0.0}
    ended(0, 10.5, ok=True)
    assert plan(11.0) == {1: 6.0}


GRID_METER = """
[[meters]]
id = "grid-meter"
node = "grid"
modbus = { profile = "eastron-sdm630", host = "127.0.0.1", port = 1600 }
"""


def starting_site() -> tuple[CyclePlanner, Callable[[float, bool], dict[int, float]]]:
    """Eight OCPP chargers on a 63 A connection with a 5 A base load and a new meter (stale
    after 3 s, trusted once fresh for 6 s); its cycle (whether the meter answers) gives the
    failsafe each connector was told, by index."""
    chargers = "".join(CHARGER.format(i=i) for i in range(8))
    site = SiteConfig.model_validate(
        tomllib.loads(SITE_TOML.format(chargers=chargers + GRID_METER))
    )
    planner = CyclePlanner(site, LimitBook(), meters=("grid-meter",))
    phases = (Quantity.CURRENT_L1, Quantity.CURRENT_L2, Quantity.CURRENT_L3)

    def cycle(now: float, meter: bool) -> dict[int, float]:
        idle = Reading(at=now, values=dict.fromkeys(phases, 0.0), state=IecState.A)
        readings = {f"cp-{i}#1": idle for i in range(8)}
        if meter:
            readings["meter:grid-meter"] = Reading(at=now, values=dict.fromkeys(phases, 5.0))
        return plan_and_send(planner, readings, now)

    return planner, cycle


def test_at_start_each_failsafe_is_configured_once_from_the_meters_first_reading() -> None:
    """All eight fit at 6 A beside the metered 5 A, five in the degraded half the budget keeps
    until the new meter is read: the failsafes wait for its first reading (trusted at once)
    and are configured once, at 6 A (not five at 6 A and three at 0 A, then those three
    again once it is trusted). A meter lost later is counted at the degraded share again."""
    planner, cycle = starting_site()
    assert cycle(0.0, False) == {}  # waits for the meter
    assert cycle(0.5, True) == dict.fromkeys(range(8), 6.0)
    assert planner.meter_watch["grid-meter"].budget_share(0.5) == 1.0  # trusted at once
    for now in range(1, 10):
        assert cycle(now, True) == {}
    told: dict[int, float] = {}
    for now in range(10, 15):  # lost
        told |= cycle(now, False)
    assert sorted(told.values()) == [0.0] * 3


def test_a_meter_not_read_at_start_is_waited_for_as_long_as_it_takes_to_count_as_lost() -> None:
    """Until the meter's stale time after the first cycle: then the degraded share counts,
    and the meter's first readings after that count once they come."""
    _, cycle = starting_site()
    assert cycle(0.0, False) == {}
    assert cycle(2.5, False) == {}
    told = cycle(3.0, False)
    assert sorted(told.values()) == [0.0] * 3 + [6.0] * 5
    assert cycle(4.0, True) == {i: 6.0 for i, a in told.items() if a == 0.0}
    for now in range(5, 12):
        assert cycle(now, True) == {}
