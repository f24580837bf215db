"""The control cycle's sums on the 500-connector depot, without I/O: one `CyclePlanner`
cycle (absorb the readings, build the allocation input, allocate, plan the commands, take
their outcomes) per round.

Group `plan-cycle-500-connectors`, `impl` hubgate only (no peer plans a cycle this way):
the part of `control-cycle-500-connectors-100ms`'s CPU per cycle that is the planner's,
measured apart from the sensing and the OCPP and Modbus traffic, in process CPU time
(`time.process_time`: on a shared machine the wall time is mostly waiting for a core).
`examples/sites/depot-500.toml` with 70 % of the connectors charging (three phases at up
to 16 A, following their setpoints), the others idle, readings new every cycle as a Modbus
read gives them, 0.1 s apart; ten connectors plug in or out every 50 cycles.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from hubgate.config.loader import load_site
from hubgate.control.limits import LimitBook
from hubgate.control.plan import CyclePlanner
from hubgate.devices.model import AppliedLimit, Reading
from hubgate.profiles.model import IecState, Quantity

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "examples/sites/depot-500.toml"
CYCLE_S = 0.1
WARM_CYCLES = 100
"""Cycles run before the measurement (sessions started, failsafes verified)."""


def cycles(planner: CyclePlanner, seed: int = 1) -> Callable[[], None]:
    """One planner cycle per call, the site's connectors following their setpoints."""
    rng = random.Random(seed)
    names = [info.name for info in planner.model.connectors]
    meters = [f"meter:{meter.id}" for meter in planner.site.meters]
    plugged = {name: rng.random() < 0.7 for name in names}
    sent = dict.fromkeys(names, 16.0)
    count = 0

    def cycle() -> None:
        nonlocal count
        now = count * CYCLE_S
        readings: dict[str, object] = {}
        for name in names:
            a = min(sent[name], 16.0) if plugged[name] else 0.0
            currents = {Quantity.CURRENT_L1: a, Quantity.CURRENT_L2: a, Quantity.CURRENT_L3: a}
            readings[name] = Reading(now, currents, IecState.C if plugged[name] else IecState.A)
        for meter in meters:
            currents = dict.fromkeys((Quantity.CURRENT_L1, Quantity.CURRENT_L2), 50.0)
            readings[meter] = Reading(now, currents | {Quantity.CURRENT_L3: 50.0})
        plan = planner.plan(readings, now)
        assert plan is not None
        results: dict[str, object] = {}
        for command in plan.commands:
            if command.verify_first:
                planner.verification.configured(command.index, ok=True)
            a = command.current_a
            results[command.name] = AppliedLimit(a, command.phases, a <= 0, now)
            sent[command.name] = a
        planner.outcomes(plan, results, now, now)
        count += 1
        if count % 50 == 0:
            for name in rng.sample(names, 10):
                plugged[name] = not plugged[name]

    return cycle


@pytest.mark.benchmark(timer=time.process_time)
@pytest.mark.parametrize("impl", ["hubgate"])
def test_plan_cycle_500_connectors(benchmark: BenchmarkFixture, impl: str, smoke: bool) -> None:
    benchmark.group = "plan-cycle-500-connectors"
    site = load_site(SITE)
    planner = CyclePlanner(site, LimitBook(), meters=[meter.id for meter in site.meters])
    cycle = cycles(planner)
    for _ in range(3 if smoke else WARM_CYCLES):
        cycle()
    benchmark.pedantic(cycle, rounds=3 if smoke else 300, iterations=1)
    assert planner.last_result is not None
    assert sum(1 for a in planner.last_result.setpoint_a if a > 0) > 100
