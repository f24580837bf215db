"""A limit's read-back over every charger profile's simulated device: the setpoints (or the
applied-limit field) and the switches in one plan, so adjacent registers cost one request."""

from __future__ import annotations

import pytest
import trio

from tests.support.drivers import CHARGERS, PROFILES, a_current, charger, rig


@pytest.mark.parametrize("name", CHARGERS)
async def test_read_back_costs_one_request_per_planned_block(name: str) -> None:
    profile = PROFILES[name]
    with trio.fail_after(10):
        async with rig(profile) as r:
            driver = charger(r)
            applied = await driver.set_limit(a_current(profile), 3)
            names, plan = await driver._read_back_plan()
            stats = driver.link.stats
            before = stats.requests
            again = await driver.applied_limit(applied.phases)
            cost = stats.requests - before
    assert (again.current_a, again.phases, again.paused) == (
        applied.current_a,
        applied.phases,
        applied.paused,
    )
    assert cost == (0 if plan is None else len(plan.requests)) <= len(names)


async def test_alfen_reads_its_setpoint_and_phase_switch_in_one_request() -> None:
    names, plan = await charger_plan("alfen-eve")
    assert names == ["setpoint0", "phase_switch"]
    assert plan == 1


async def charger_plan(name: str) -> tuple[list[str], int]:
    with trio.fail_after(10):
        async with rig(PROFILES[name]) as r:
            names, plan = await charger(r)._read_back_plan()
    return names, 0 if plan is None else len(plan.requests)
