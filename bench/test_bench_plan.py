"""Deadline planning speed: one plan of 1,000 sessions over 24 h in 15-minute slots.

Group `plan-deadlines-1000-connectors`, `impl` in [hubgate, python-reference]
(the same algorithm in pure Python, tests/support/deadline_reference.py), on a
congested fleet (the shared power is short in most slots, so every slot levels).
The control loop plans every cycle, so the plan must fit well inside one.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from hubgate._core import DeadlinePlanner
from tests.support.deadline_reference import Case, random_case, reference_plan

SESSIONS = 1_000


def planning(case: Case, impl: str) -> Callable[[], object]:
    """One planning call over fixed inputs."""
    if impl == "hubgate":
        planner = DeadlinePlanner()
        columns = [
            array("d", values)
            for values in (case.slot_s, case.cap_w, case.need_wh, case.departure_s, case.max_w)
        ]
        return lambda: planner.plan(*columns)
    return lambda: reference_plan(case)


@pytest.mark.parametrize("impl", ["hubgate", "python-reference"])
def test_plan_deadlines(benchmark: BenchmarkFixture, impl: str, smoke: bool) -> None:
    benchmark.group = f"plan-deadlines-{SESSIONS}-connectors"
    case = random_case(7, 100 if smoke else SESSIONS, 3.0)
    plan = planning(case, impl)
    if impl == "hubgate":
        result = benchmark(plan)
    else:
        result = benchmark.pedantic(plan, rounds=3, iterations=1)
    assert result is not None
