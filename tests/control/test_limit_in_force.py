"""The limit in force on a node: the tightest of its rating, every lease and the peak target,
in A per phase and in kW, with the source that sets it and when that lapses."""

from __future__ import annotations

import pytest

from hubgate.control.limit_in_force import CAP, PEAK_TARGET, Bound, node_bounds, node_limit
from hubgate.control.limits import SITE, Limit, LimitBook, LimitSource
from hubgate.control.plan import CyclePlanner
from tests.support.loop_site import PlannedSite, SimSite, site_config

V = 230.0


def test_a_power_limit_binds_as_current_on_three_phases() -> None:
    cap = Bound(CAP, (1580.0, 1580.0, 1580.0), 1000.0, None, "site file")
    operator = Bound("grid-operator", None, 300.0, None, "box")
    limit = node_limit((cap, operator), V)
    assert limit.phase_a == pytest.approx((434.78, 434.78, 434.78), abs=0.01)
    assert limit.power_kw == pytest.approx(300.0)
    assert (limit.source, limit.phase_sources) == ("grid-operator", ("grid-operator",) * 3)
    assert limit.expires_at is None


def test_each_phase_has_its_own_source_and_the_tightest_names_the_node() -> None:
    cap = Bound(CAP, (63.0, 63.0, 63.0), None, None, "site file")
    api = Bound("api", (50.0, 70.0, 70.0), None, 120.0, "api 10.0.0.1")
    csms = Bound("csms", None, 41.4, 300.0, "csms")  # 60 A per phase
    limit = node_limit((cap, api, csms), V)
    assert limit.phase_a == pytest.approx((50.0, 60.0, 60.0))
    assert limit.phase_sources == ("api", "csms", "csms")
    assert (limit.source, limit.expires_at) == ("api", 120.0)
    assert limit.power_kw == pytest.approx(V * 170 / 1000)


def test_a_lease_equal_to_the_cap_binds_and_a_node_without_limits_is_unlimited() -> None:
    cap = Bound(CAP, (63.0, 63.0, 63.0), None, None, "site file")
    same = Bound("api", (63.0, 63.0, 63.0), None, 60.0, "api")
    assert node_limit((cap, same), V).source == "api"
    assert node_limit((Bound(CAP, None, None, None, "site file"),), V).unlimited


def test_bounds_come_from_the_book_with_the_grid_operator_and_the_peak_target() -> None:
    planner = CyclePlanner(
        site_config("").model_copy(
            update={"grid": site_config().grid.model_copy(update={"peak_target_kw": 50.0})}
        ),
        LimitBook(),
    )
    book, model = planner.limits, planner.model
    book.set(SITE, LimitSource.GRID_OPERATOR, Limit(power_kw=20.7), now=0, lease_s=None, origin="b")
    book.set(SITE, LimitSource.API, Limit(phase_a=(90, 90, 90)), now=0, lease_s=60, origin="api x")
    book.set("board", LimitSource.CSMS, Limit(power_kw=10.0), now=0, lease_s=30, origin="csms")
    bounds = node_bounds(model, book, 0, 1.0, peak_target_kw=50.0)
    assert [b.source for b in bounds] == [CAP, "grid-operator", "api", PEAK_TARGET]
    root = planner.node_limit(0, 1.0)
    assert root.source == "grid-operator"
    assert root.phase_a == pytest.approx((30.0, 30.0, 30.0))
    board = planner.node_limit(model.node_ids.index("board"), 1.0)
    assert (board.source, board.expires_at) == ("csms", 30.0)
    assert board.phase_a == pytest.approx((10_000 / 690,) * 3)
    # Leases lapse: the cap binds again.
    assert planner.node_limit(model.node_ids.index("board"), 31.0).source == CAP


def test_the_published_state_shows_the_grid_operator_step_as_the_limit_in_force() -> None:
    site = PlannedSite.build(SimSite.build())
    site.run(30)
    site.sim.box.percent = 30.0  # 30 % of 3 x 230 V x 100 A = 20.7 kW = 30 A per phase
    site.run(3)
    limit = site.planner.node_limit(0, site.now)
    assert limit.source == "grid-operator"
    assert limit.phase_a == pytest.approx((30.0, 30.0, 30.0))
    assert limit.power_kw == pytest.approx(20.7)
