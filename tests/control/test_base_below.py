"""The base load metered on the boards counts at every node above them.

The allocator takes each node's base load as given (what flows through that node besides
its connectors) and does not add a child's to its parent's. A node without a trusted
meter of its own therefore carries the base its boards' meters show (plus the idle draw
of the DC connectors at it): on a site metered only on its boards, a step-down at the
grid connection must leave room for the boards' base load, not give it to the EVs.
"""

from __future__ import annotations

import tomllib

import pytest

from hubgate.config.model import SiteConfig
from hubgate.control.limits import SITE, Limit, LimitBook, LimitSource
from hubgate.control.plan import CyclePlanner
from tests.support.events import RecordedEvents
from tests.support.loop_site import CONTROL_TOML, PlannedSite, SimBox, SimCharger, SimMeter, SimSite
from tests.support.toml_tables import meter, modbus, modbus_charger

GRID_A = 100.0
STEP_LIMIT_A = 30.0
"""30 % of the grid connection: 20.7 kW at 3 x 230 V."""

GRID_OPERATOR_TOML = """
[grid_operator]
source = "modbus-device"
modbus = { profile = "grid-operator-limit-register", host = "127.0.0.1", port = 1506 }
"""

BOARDS_TOML = (
    """
[site]
name = "two boards"
[grid]
phase_current_limit_a = 100
[[nodes]]
id = "board-a"
kind = "switchboard"
phase_current_limit_a = 64
[[nodes]]
id = "board-b"
kind = "switchboard"
phase_current_limit_a = 64
"""
    + "".join(
        modbus_charger(f"cp-{i}", node, modbus("alfen-eve", port=1500 + i))
        for i, node in ((1, "board-a"), (2, "board-a"), (3, "board-b"))
    )
    + meter("board-a-meter", "board-a", modbus("eastron-sdm630", port=1511))
    + meter("board-b-meter", "board-b", modbus("eastron-sdm630", port=1512))
    + GRID_OPERATOR_TOML
    + CONTROL_TOML
)


def boards_site(base_a: float, base_b: float, *, grid_meter: bool = False) -> PlannedSite:
    """Three chargers on two metered boards (cp-1, cp-2 on board-a; cp-3 on board-b) with
    base loads `base_a` and `base_b`; a meter at the grid connection too if `grid_meter`."""
    chargers = [SimCharger(f"cp-{i}") for i in (1, 2, 3)]
    meters = [
        SimMeter("board-a-meter", chargers[:2], base_a),
        SimMeter("board-b-meter", chargers[2:], base_b),
    ]
    toml = BOARDS_TOML
    if grid_meter:
        meters.append(SimMeter("grid-meter", chargers, base_a + base_b))
        toml += meter("grid-meter", "grid", modbus("eastron-sdm630", port=1513))
    sim = SimSite(chargers, meters, SimBox())
    planner = CyclePlanner(
        SiteConfig.model_validate(tomllib.loads(toml)),
        LimitBook(),
        meters=[m.id for m in meters],
        grid_operator_box=True,
        events=RecordedEvents(),
    )
    return PlannedSite(sim, planner)


def commanded_a(site: PlannedSite) -> float:
    """What the last plan commands the three (three-phase) EVs, A per phase."""
    return sum(site.setpoints().values())


def grid_current_a(site: PlannedSite) -> float:
    """What flows at the grid connection now, A per phase."""
    return sum(m.current(site.now) for m in site.sim.meters[:2])


def step_to_30_percent(site: PlannedSite) -> None:
    site.sim.box.percent = 30.0


def api_current_limit(site: PlannedSite) -> None:
    limit = Limit(phase_a=(STEP_LIMIT_A,) * 3)
    site.planner.limits.set(SITE, LimitSource.API, limit, now=site.now, lease_s=600, origin="t")


def api_power_limit(site: PlannedSite) -> None:
    limit = Limit(power_kw=3 * 230 * STEP_LIMIT_A / 1000)
    site.planner.limits.set(SITE, LimitSource.API, limit, now=site.now, lease_s=600, origin="t")


@pytest.mark.parametrize(
    "step_down",
    [step_to_30_percent, api_current_limit, api_power_limit],
    ids=["grid-operator-30-percent", "api-current", "api-power"],
)
def test_a_step_down_at_an_unmetered_grid_node_leaves_room_for_the_boards_base_load(
    step_down: object,
) -> None:
    base = (6.0, 4.0)
    site = boards_site(*base)
    site.run(40)
    assert commanded_a(site) >= 60  # room for all three before the step
    assert callable(step_down)
    step_down(site)
    for _ in range(30):
        plan = site.cycle()
        assert plan is not None
        # what hubgate commands plus the boards' base load fits the limit, every cycle
        assert commanded_a(site) + sum(base) <= STEP_LIMIT_A + 1e-6, (site.now, site.setpoints())
        assert min(plan.inputs.base_load_a[0:3]) >= sum(base) - 1e-6  # type: ignore[index]
    assert commanded_a(site) >= 3 * 6  # the EVs keep charging at their minimum
    assert grid_current_a(site) <= STEP_LIMIT_A + 1e-6


def test_a_lost_grid_meter_with_live_board_meters_still_counts_the_boards_base_load() -> None:
    base = (30.0, 30.0)
    site = boards_site(*base, grid_meter=True)
    site.run(40)
    assert commanded_a(site) + sum(base) <= GRID_A + 1e-6
    assert commanded_a(site) >= 36  # the 40 A left at the grid connection, near enough
    site.sim.meters[2].reachable = False
    for _ in range(30):
        plan = site.cycle()
        assert plan is not None
        # its degraded share (50 % for the EVs) is no licence to overlook what the boards
        # measure: 60 A of base load leaves the EVs 40 A, not 50
        assert commanded_a(site) + sum(base) <= GRID_A + 1e-6, (site.now, site.setpoints())
    assert site.planner.meter_watch["grid-meter"].budget_share(site.now) == 0.5
    assert site.last is not None
    assert "grid meter lost: 50% budget" in site.last.notes
    assert commanded_a(site) >= 36


def test_every_meter_lost_under_a_step_still_leaves_the_evs_a_degraded_budget() -> None:
    """A lost meter's assumption (the rest of its limit beyond its degraded share) is its
    own node's: the boards' are not added up at the grid connection, which would leave the
    EVs nothing under the step instead of the grid's degraded share of it. Until the meters
    count as lost, their base is held as it was (their last readings, from before the EVs
    followed the step, are older than the draws: counted, everyone paused for min_off)."""
    site = boards_site(6.0, 4.0, grid_meter=True)
    site.run(40)
    step_to_30_percent(site)
    for sim_meter in site.sim.meters:
        sim_meter.reachable = False
    site.run(10)
    assert site.last is not None
    assert "grid meter lost: 50% budget" in site.last.notes
    # half of the 30 A step for the EVs: the three at their minimum do not fit, two do
    assert 6 <= commanded_a(site) <= STEP_LIMIT_A / 2 + 1e-6
