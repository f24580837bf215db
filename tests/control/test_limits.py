"""Limit leases: most restrictive wins, leases lapse, every change is audited."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hubgate.control.limits import (
    SITE,
    AuditAction,
    Limit,
    LimitBook,
    LimitSource,
    grid_operator_limit_kw,
)


def book() -> LimitBook:
    return LimitBook(wall_clock=lambda: 1_700_000_000.0)


def test_most_restrictive_lease_wins_per_phase() -> None:
    limits = book()
    limits.set(
        SITE,
        LimitSource.CONFIG,
        Limit((100, 100, 100), 60),
        now=0,
        lease_s=None,
        origin="site.toml",
    )
    limits.set(
        SITE, LimitSource.MODBUS_SERVER, Limit((120, 80, 120)), now=0, lease_s=30, origin="10.0.0.5"
    )
    limits.set(SITE, LimitSource.API, Limit(power_kw=40), now=0, lease_s=30, origin="token:ops")
    in_force = limits.in_force(SITE, now=1)
    assert in_force.limit == Limit((100, 80, 100), 40)
    assert in_force.sources == (LimitSource.API, LimitSource.CONFIG, LimitSource.MODBUS_SERVER)


def test_lease_lapses_and_default_returns() -> None:
    limits = book()
    limits.set(SITE, LimitSource.CONFIG, Limit((100, 100, 100)), now=0, lease_s=None, origin="file")
    limits.set(
        SITE, LimitSource.MODBUS_SERVER, Limit((50, 50, 50)), now=0, lease_s=60, origin="plc"
    )
    assert limits.in_force(SITE, now=59.9).limit.phase_a == (50, 50, 50)
    assert limits.in_force(SITE, now=60).limit.phase_a == (100, 100, 100)
    actions = [entry.action for entry in limits.audit()]
    assert actions == [AuditAction.SET, AuditAction.SET, AuditAction.EXPIRED]
    assert limits.audit()[-1].origin == "plc"


def test_same_source_replaces_its_lease_and_clear_is_audited() -> None:
    limits = book()
    limits.set("feeder-1", LimitSource.API, Limit((40, 40, 40)), now=0, lease_s=10, origin="a")
    limits.set("feeder-1", LimitSource.API, Limit((60, 60, 60)), now=1, lease_s=10, origin="b")
    assert limits.in_force("feeder-1", now=2).limit.phase_a == (60, 60, 60)
    assert limits.clear("feeder-1", LimitSource.API, now=3, origin="c")
    assert not limits.clear("feeder-1", LimitSource.API, now=3, origin="c")
    assert limits.in_force("feeder-1", now=4).limit == Limit()
    assert [e.action for e in limits.audit(last=1)] == [AuditAction.CLEARED]


def test_targets_are_independent() -> None:
    limits = book()
    limits.set("cp-1#1", LimitSource.API, Limit((16, 16, 16)), now=0, lease_s=None, origin="x")
    assert limits.in_force("cp-1#2", now=0).limit == Limit()


def test_audit_log_is_bounded() -> None:
    limits = LimitBook(audit_size=3)
    for i in range(5):
        limits.set(SITE, LimitSource.API, Limit(power_kw=float(i)), now=i, lease_s=None, origin="x")
    assert [e.limit.power_kw for e in limits.audit()] == [2.0, 3.0, 4.0]


def test_bad_values_rejected() -> None:
    with pytest.raises(ValueError, match="0 A or more"):
        Limit((-1, 0, 0))
    with pytest.raises(ValueError, match="lease_s must be above 0"):
        book().set(SITE, LimitSource.API, Limit(), now=0, lease_s=0, origin="x")


phase = st.floats(min_value=0, max_value=1_000)
limits_strategy = st.builds(
    Limit,
    st.none() | st.tuples(phase, phase, phase),
    st.none() | st.floats(min_value=0, max_value=10_000),
)


@given(st.lists(limits_strategy, min_size=1, max_size=5))
def test_in_force_is_never_above_any_active_lease(leases: list[Limit]) -> None:
    limits = book()
    for index, limit in enumerate(leases):
        source = list(LimitSource)[index]
        limits.set(SITE, source, limit, now=0, lease_s=None, origin="x")
    result = limits.in_force(SITE, now=0).limit
    for limit in leases:
        if limit.phase_a is not None:
            assert result.phase_a is not None
            assert all(r <= v for r, v in zip(result.phase_a, limit.phase_a, strict=True))
        if limit.power_kw is not None:
            assert result.power_kw is not None
            assert result.power_kw <= limit.power_kw


def test_grid_operator_percent_of_the_connection() -> None:
    assert grid_operator_limit_kw(30, 100) == pytest.approx(30)
    assert grid_operator_limit_kw(0, 100) == 0.0
    with pytest.raises(ValueError, match="0-100"):
        grid_operator_limit_kw(120, 100)
