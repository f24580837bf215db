"""Deadline planning, twice: the Rust algorithm in plain Python, and the LP optimum.

`reference_plan` is `rust/core/src/plan.rs` written for clarity (the
differential reference and the benchmark's peer): schedule every session as
late as possible, slot by slot from the last, levelling each slot's energy over
the sessions' remaining hours at their maximum (largest first). `lp_shortfall`
is the quality oracle: the least total shortfall any schedule over the same
slots achieves, from `scipy.optimize.linprog` (HiGHS).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from functools import cached_property

HOUR_S = 3600.0
DONE_WH = 1e-9


@dataclass(frozen=True)
class Case:
    """A planning problem: slots (length, shared power) and sessions."""

    slot_s: list[float]
    cap_w: list[float]
    need_wh: list[float]
    departure_s: list[float]
    max_w: list[float]

    @cached_property
    def starts(self) -> list[float]:
        """Each slot's start in s from now, and the horizon's end last."""
        starts = [0.0]
        for length in self.slot_s:
            starts.append(starts[-1] + length)
        return starts

    def usable_h(self, session: int, slot: int) -> float:
        """Hours of `slot` the session is still plugged in (departures past the horizon end it)."""
        departure = min(self.departure_s[session], self.starts[-1])
        return max(0.0, min(departure - self.starts[slot], self.slot_s[slot])) / HOUR_S


SLOT_S = 900.0


def random_case(seed: int, sessions: int, tightness: float) -> Case:
    """A day of 15-minute slots (the first a remainder), capacities that change
    through the day, and a fleet; `tightness` scales the energy asked against the capacity."""
    rng = random.Random(seed)
    slots = 96
    slot_s = [rng.uniform(1.0, SLOT_S)] + [SLOT_S] * (slots - 1)
    base = rng.uniform(50e3, 200e3) * max(1.0, sessions / 100)
    cap_w = [base * rng.choice([0.5, 1.0, 1.0, 1.5]) for _ in range(slots)]
    max_w = [rng.choice([3.7e3, 7.4e3, 11e3, 22e3, 50e3, 150e3]) for _ in range(sessions)]
    departure_s = [
        math.inf if rng.random() < 0.05 else rng.uniform(600, 86_400 * 1.2) for _ in range(sessions)
    ]
    horizon = sum(slot_s)
    energy = sum(c * s for c, s in zip(cap_w, slot_s, strict=True)) / 3600
    need_wh = [
        min(rng.uniform(0.1, 1.2) * m * min(d, horizon) / 3600, energy * tightness / sessions * 3)
        * rng.uniform(0.2, 1.0)
        for m, d in zip(max_w, departure_s, strict=True)
    ]
    return Case(slot_s, cap_w, need_wh, departure_s, max_w)


@dataclass(frozen=True)
class ReferencePlan:
    now_w: list[float]
    shortfall_wh: list[float]
    laxity_s: list[float]


def _level(active: list[tuple[float, float, float]], energy_wh: float) -> float:
    """Level of remaining hours down to which `energy_wh` serves (remaining, max, usable_h)."""
    full = sum(min(m * u, r) for r, m, u in active)
    if full <= energy_wh:
        return 0.0
    # As the level falls, a session takes `max` per hour below its remaining hours
    # and stops `usable_h` lower.
    events = sorted(
        [(r / m, m) for r, m, _ in active] + [(r / m - u, -m) for r, m, u in active],
        key=lambda e: -e[0],
    )
    served, slope, at = 0.0, 0.0, events[0][0]
    for hours, change in events:
        more = slope * (at - hours)
        if served + more >= energy_wh and slope > 0:
            return at - (energy_wh - served) / slope
        served, at, slope = served + more, hours, slope + change
    return max(at, 0.0)


def reference_plan(case: Case) -> ReferencePlan:
    """The plan `DeadlinePlanner.plan` must give, computed plainly."""
    n = len(case.need_wh)
    planned = [
        case.need_wh[i] > DONE_WH and math.isfinite(case.departure_s[i]) and case.max_w[i] > 0
        for i in range(n)
    ]
    remaining = [case.need_wh[i] if planned[i] else 0.0 for i in range(n)]
    laxity = [
        case.departure_s[i] - case.need_wh[i] * HOUR_S / case.max_w[i] if planned[i] else math.inf
        for i in range(n)
    ]
    now_w = [0.0] * n
    for k in reversed(range(len(case.slot_s))):
        usable = {i: case.usable_h(i, k) for i in range(n) if remaining[i] > DONE_WH}
        usable = {i: u for i, u in usable.items() if u > 0}
        active = [(remaining[i], case.max_w[i], u) for i, u in usable.items()]
        level = _level(active, case.cap_w[k] * case.slot_s[k] / HOUR_S)
        for i, u in usable.items():
            given = case.max_w[i] * min(max(remaining[i] / case.max_w[i] - level, 0.0), u)
            given = min(given, remaining[i])
            remaining[i] -= given
            if k == 0:
                now_w[i] = given / u
    shortfall = [r if r > DONE_WH else 0.0 for r in remaining]
    return ReferencePlan(now_w, shortfall, laxity)


def lp_shortfall(case: Case) -> float:
    """The least total shortfall (Wh) of any schedule over the case's slots (linear program)."""
    import numpy as np
    from scipy.optimize import linprog
    from scipy.sparse import lil_matrix

    n, slots = len(case.need_wh), len(case.slot_s)
    planned = [
        i
        for i in range(n)
        if case.need_wh[i] > DONE_WH and math.isfinite(case.departure_s[i]) and case.max_w[i] > 0
    ]
    if not planned:
        return 0.0
    variables = [(i, k) for i in planned for k in range(slots)]
    bounds = [(0.0, case.max_w[i] * case.usable_h(i, k)) for i, k in variables]
    rows = lil_matrix((slots + len(planned), len(variables)))
    limits = [c * s / HOUR_S for c, s in zip(case.cap_w, case.slot_s, strict=True)]
    limits += [case.need_wh[i] for i in planned]
    row_of = {i: slots + r for r, i in enumerate(planned)}
    for v, (i, k) in enumerate(variables):
        rows[k, v] = 1.0
        rows[row_of[i], v] = 1.0
    result = linprog(
        -np.ones(len(variables)),
        A_ub=rows.tocsr(),
        b_ub=np.array(limits),
        bounds=bounds,
        method="highs",
    )
    assert result.status == 0, result.message
    return sum(case.need_wh[i] for i in planned) + float(result.fun)
