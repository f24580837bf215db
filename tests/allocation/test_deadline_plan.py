"""The deadline planner against its plain-Python twin and against the LP optimum.

Random cases over a 24 h horizon in 15-minute slots (the first slot a
remainder), capacities that change through the day, feasible and infeasible
fleets: the Rust planner must equal the reference, plan no more than a slot
holds, and leave a total shortfall within 1 % of `scipy.optimize.linprog`'s
optimum (exactly none where the LP finds none).
"""

from __future__ import annotations

import math

import pytest

from hubgate._core import DeadlinePlan, DeadlinePlanner, PlanInputError
from tests.support.deadline_reference import Case, lp_shortfall, random_case, reference_plan


def planned(case: Case) -> DeadlinePlan:
    return DeadlinePlanner().plan(
        case.slot_s, case.cap_w, case.need_wh, case.departure_s, case.max_w
    )


CASES = [(seed, n, t) for seed in range(12) for n, t in ((20, 0.3), (60, 1.0), (120, 3.0))]


@pytest.mark.parametrize(("seed", "sessions", "tightness"), CASES)
def test_shortfall_within_one_percent_of_the_lp_optimum(
    seed: int, sessions: int, tightness: float
) -> None:
    case = random_case(seed, sessions, tightness)
    plan = planned(case)
    ours = sum(plan.shortfall_wh)
    best = lp_shortfall(case)
    total = sum(n for n, d in zip(case.need_wh, case.departure_s, strict=True) if math.isfinite(d))
    if best <= 1e-6 * total:
        assert ours <= 1e-6 * total, f"LP finishes everyone, the plan leaves {ours:.1f} Wh"
    else:
        assert ours <= best * 1.01, f"plan {ours:.1f} Wh short, LP {best:.1f} Wh"


@pytest.mark.parametrize("seed", range(8))
def test_rust_equals_the_plain_python_reference(seed: int) -> None:
    case = random_case(100 + seed, 40, [0.3, 1.0, 3.0][seed % 3])
    plan, ref = planned(case), reference_plan(case)
    assert list(plan.laxity_s) == pytest.approx(ref.laxity_s, rel=1e-9)
    assert list(plan.now_w) == pytest.approx(ref.now_w, rel=1e-6, abs=1e-3)
    assert list(plan.shortfall_wh) == pytest.approx(ref.shortfall_wh, rel=1e-6, abs=1e-3)


@pytest.mark.parametrize("seed", range(6))
def test_the_first_slot_holds_the_plan_and_each_session_its_maximum(seed: int) -> None:
    case = random_case(200 + seed, 80, 3.0)
    plan = planned(case)
    slot0_wh = sum(p * case.usable_h(i, 0) for i, p in enumerate(plan.now_w))
    assert slot0_wh <= case.cap_w[0] * case.slot_s[0] / 3600 * (1 + 1e-9)
    for now_w, max_w in zip(plan.now_w, case.max_w, strict=True):
        assert 0.0 <= now_w <= max_w * (1 + 1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_following_the_plan_slot_by_slot_delivers_what_it_promised(seed: int) -> None:
    """Replanning after each slot with what was delivered keeps the first plan's shortfall."""
    case = random_case(300 + seed, 30, [1.0, 3.0][seed % 2])
    promised = sum(planned(case).shortfall_wh)
    need, departure = list(case.need_wh), list(case.departure_s)
    slot_s, cap_w = list(case.slot_s), list(case.cap_w)
    missed = 0.0
    while slot_s:
        step = Case(slot_s, cap_w, need, departure, case.max_w)
        plan = planned(step)
        length = slot_s[0]
        for i, now_w in enumerate(plan.now_w):
            need[i] -= min(now_w * step.usable_h(i, 0), need[i])
            if math.isfinite(departure[i]) and departure[i] <= length:
                missed += need[i]
                need[i] = 0.0
            departure[i] = max(departure[i] - length, 0.0)
        slot_s, cap_w = slot_s[1:], cap_w[1:]
    # Sessions leaving past the horizon count their need left at its end.
    missed += sum(n for n, d in zip(need, departure, strict=True) if math.isfinite(d))
    assert missed == pytest.approx(promised, rel=1e-6, abs=1e-3)


def test_unusable_input_names_the_value() -> None:
    with pytest.raises(PlanInputError, match=r"need_wh\[1\]"):
        DeadlinePlanner().plan([900.0], [1e4], [1.0, -2.0], [900.0, 900.0], [1e4, 1e4])
    with pytest.raises(PlanInputError, match="cap_w: expected 2 values"):
        DeadlinePlanner().plan([900.0, 900.0], [1e4], [], [], [])
