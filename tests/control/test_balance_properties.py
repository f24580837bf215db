"""The site's energy balance, cycle after cycle: the real planner, allocator and battery policy.

Hypothesis draws a site (one to six 32 A chargers behind a metered connection, a battery,
PV, EVs whose own maximum may be below the connector's) and a run of conditions, each held
for a while: base load, PV output, the grid operator's limit (an API lease), the battery's
state of charge. Every cycle the `CyclePlanner` reads the physics, plans, and its setpoints
and battery command are applied; the EVs follow at once, the battery within a cycle.

Properties:

- the import never exceeds the limit in force (where the site alone is not over it), once
  the first cycle after a change of conditions has passed (the meter lags one cycle);
- the battery never discharges while the site exports (same reaction);
- at the end of each condition, if an EV is held below its own maximum by the connection's
  limits, the battery discharges at its rating, or is at its minimum state of charge, or
  the import is at the limit (counting what EVs are given but do not take: hubgate
  allocated it, and learns an EV's own maximum only from a setpoint that stood 10 s).

With chargers that stop answering (neither read nor reached; their EVs keep the last
setpoint), the battery still never discharges while the site exports.

`BALANCE_PROFILE=thorough` runs 10,000 examples (the issue's acceptance run); the default
profile runs 150 in CI.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hubgate._core import AllocReason
from hubgate.config.model import SiteConfig
from hubgate.control.allocation import AllocationSettings
from hubgate.control.cycle import LoopTiming
from hubgate.control.limits import SITE, Limit, LimitBook, LimitSource
from hubgate.control.plan import CyclePlanner
from hubgate.devices.model import AppliedLimit, BatteryCommandResult, Reading
from hubgate.profiles.model import IecState, Quantity

PROFILES = {
    "thorough": (settings(max_examples=10_000, deadline=None), 4 * 3600),
    "ci": (settings(max_examples=150, deadline=None), 300),
}
"""This test's own profiles and their time bounds in seconds (the global default is left to
the other tests; a run of cycles takes up to a few hundred milliseconds)."""
PROFILE, TIMEOUT_S = PROFILES[os.environ.get("BALANCE_PROFILE", "ci")]

VOLTAGE = 230.0
BATTERY_W = 50_000.0
CONNECTION_KW = 200.0
STEP_W = 3 * VOLTAGE  # a 1 A step on three phases

SITE_TOML = """
[site]
name = "balance"
[grid]
phase_current_limit_a = 400
power_limit_kw = {connection_kw}
{chargers}
[[meters]]
id = "meter"
node = "grid"
modbus = {{ profile = "eastron-sdm630", host = "127.0.0.1", port = 1600 }}
[battery]
id = "battery"
modbus = {{ profile = "sma-sunny-boy-storage", host = "127.0.0.1", port = 1601, unit = 3 }}
capacity_kwh = 100
max_charge_kw = 50
max_discharge_kw = 50
min_soc_percent = 10
max_soc_percent = 90
charge_from_grid = {charge_from_grid}
[[pv]]
id = "pv"
modbus = {{ profile = "sunspec-inverter", host = "127.0.0.1", port = 1602 }}
peak_kw = 120
[grid_operator]
source = "api"
[control]
cycle_s = 1.0
meter_stale_s = 3
"""

CHARGER = """
[[chargers]]
id = "cp-{i}"
node = "grid"
modbus = {{ profile = "alfen-eve", host = "127.0.0.1", port = {port} }}
connectors = [{{ id = 1, max_current_a = 32 }}]
"""


class BatteryHandle:
    """The planner's view of the battery device: its ratings (it is read and commanded
    by the harness, not through this object)."""

    id = "battery"
    max_charge_w = BATTERY_W
    max_discharge_w = BATTERY_W

    async def read(self) -> Reading:
        raise AssertionError("the harness reads the battery")

    async def command(self, power_w: float) -> BatteryCommandResult:
        raise AssertionError("the harness commands the battery")


@dataclass
class Physics:
    """EVs on three phases, a battery that reaches its command within a cycle, PV, base."""

    ev_max_a: list[float]
    soc: float
    base_w: float = 0.0
    pv_w: float = 0.0
    setpoint_a: list[float] = field(default_factory=list)
    battery_w: float = 0.0
    """Positive discharges."""
    command_w: float = 0.0
    shed_w: float = 0.0
    """What the EVs of reached chargers stopped drawing in the last cycle (cut, they follow
    within it)."""

    def __post_init__(self) -> None:
        self.setpoint_a = [0.0] * len(self.ev_max_a)

    def ev_a(self, i: int) -> float:
        offered = self.setpoint_a[i]
        return min(offered, self.ev_max_a[i]) if offered >= 6.0 else 0.0

    def evs_w(self) -> float:
        return sum(self.ev_a(i) for i in range(len(self.ev_max_a))) * 3 * VOLTAGE

    def import_w(self) -> float:
        return self.base_w - self.pv_w + self.evs_w() - self.battery_w

    def step(self, dt: float) -> None:
        """The battery follows its command within its SoC window; its SoC moves."""
        wanted = self.command_w
        if (wanted > 0 and self.soc <= 10) or (wanted < 0 and self.soc >= 90):
            wanted = 0.0
        self.battery_w = wanted
        self.soc -= self.battery_w * dt / 3600 / 100_000 * 100

    def readings(self, now: float) -> dict[str, object]:
        per_phase = self.import_w() / (3 * VOLTAGE)
        grid = dict.fromkeys((Quantity.CURRENT_L1, Quantity.CURRENT_L2), per_phase)
        grid[Quantity.CURRENT_L3] = per_phase
        phase_w = self.import_w() / 3
        grid |= dict.fromkeys((Quantity.POWER_L1, Quantity.POWER_L2, Quantity.POWER_L3), phase_w)
        grid[Quantity.POWER_TOTAL] = self.import_w()
        out: dict[str, object] = {
            "meter:meter": Reading(at=now, values=grid),
            "battery:battery": Reading(
                at=now, values={Quantity.SOC: self.soc, Quantity.BATTERY_POWER: self.battery_w}
            ),
            "pv:pv": Reading(at=now, values={Quantity.PV_POWER: self.pv_w}),
        }
        for i in range(len(self.ev_max_a)):
            amps = self.ev_a(i)
            out[f"cp-{i}#1"] = Reading(
                at=now,
                values={
                    Quantity.CURRENT_L1: amps,
                    Quantity.CURRENT_L2: amps,
                    Quantity.CURRENT_L3: amps,
                },
                state=IecState.C if amps > 0 else IecState.B,
            )
        return out


def planner_for(n: int, charge_from_grid: bool) -> CyclePlanner:
    chargers = "".join(CHARGER.format(i=i, port=1700 + i) for i in range(n))
    text = SITE_TOML.format(
        connection_kw=CONNECTION_KW,
        chargers=chargers,
        charge_from_grid=str(charge_from_grid).lower(),
    )
    return CyclePlanner(
        SiteConfig.model_validate(tomllib.loads(text)),
        LimitBook(),
        meters=("meter",),
        battery=BatteryHandle(),
        pv={"pv": object()},  # type: ignore[dict-item]
        allocation=AllocationSettings(),  # the real allocator, its dwell times and intervals
        timing=LoopTiming(recover_after_s=3.0),
    )


_HELD_BY_ROOT = {
    AllocReason.PHASE_CURRENT,
    AllocReason.POWER,
    AllocReason.GRID_OPERATOR,
    AllocReason.PEAK_TARGET,
    AllocReason.PAUSED_NO_CAPACITY,
}
_REASONS = AllocReason.members()

condition = st.tuples(
    st.floats(0, 150_000),  # base load
    st.floats(0, 120_000),  # PV output
    st.floats(20, CONNECTION_KW),  # the grid operator's limit (kW)
    st.sampled_from([8.0, 12.0, 50.0, 88.0, 95.0]),  # SoC at the start (edges too)
)
conditions = st.lists(condition, min_size=1, max_size=3)


@pytest.mark.timeout(TIMEOUT_S)
@settings(PROFILE, suppress_health_check=[HealthCheck.too_slow])
@given(
    ev_max=st.lists(st.sampled_from([6.0, 10.0, 16.0, 25.0, 32.0]), min_size=1, max_size=6),
    charge_from_grid=st.booleans(),
    runs=conditions,
)
# found at 10,000 examples: the battery charged from the grid into the room an EV held back
# by the connection was climbing into (counted as base load, it kept the EV throttled)
@example(
    ev_max=[25.0, 16.0, 10.0, 16.0, 10.0, 10.0],
    charge_from_grid=True,
    runs=[(0.0, 61_420.0, 20.0, 12.0)],
)
def test_the_balance_holds_cycle_after_cycle(
    ev_max: list[float],
    charge_from_grid: bool,
    runs: list[tuple[float, float, float, float]],
) -> None:
    planner = planner_for(len(ev_max), charge_from_grid)
    physics = Physics(ev_max_a=ev_max, soc=50.0)
    now = 0.0
    # warm up: the meter is trusted once fresh for meter_stale_s
    physics.base_w, physics.pv_w = 10_000.0, 0.0
    for _ in range(6):
        cycle(planner, physics, now)
        now += 1.0
    for base_w, pv_w, limit_kw, soc in runs:
        physics.base_w, physics.pv_w, physics.soc = base_w, pv_w, soc
        planner.limits.set(
            SITE, LimitSource.API, Limit(power_kw=limit_kw), now=now, lease_s=None, origin="t"
        )
        limit_w = limit_kw * 1000
        for k in range(30):
            import_w = cycle(planner, physics, now)
            now += 1.0
            if k == 0:
                continue  # the meter saw the old conditions
            site_alone = base_w - pv_w - min(physics.battery_w, 0.0)
            if site_alone <= limit_w:
                assert import_w <= limit_w + 1.0, (k, import_w, limit_w)
            assert_no_discharge_into_the_grid(planner, physics, import_w, k)
        assert_no_needless_throttling(planner, physics, limit_w, len(ev_max))


def cycle(
    planner: CyclePlanner, physics: Physics, now: float, silent: frozenset[int] = frozenset()
) -> float:
    """One control cycle and the physics after it; the import then. The chargers in
    `silent` are neither read nor reached: their EVs keep the last setpoint."""
    readings = physics.readings(now)
    for i in silent:
        del readings[f"cp-{i}#1"]
    plan = planner.plan(readings, now)
    assert plan is not None
    drawn = [physics.ev_a(i) for i in range(len(physics.ev_max_a))]
    results: dict[str, object] = {}
    for command in plan.commands:
        if command.index in silent:
            continue
        if command.verify_first:
            planner.verification.configured(command.index, ok=True)
        physics.setpoint_a[command.index] = command.current_a
        results[command.name] = AppliedLimit(command.current_a, 3, command.current_a == 0, now)
    planner.outcomes(plan, results, now, now)
    physics.shed_w = sum(max(a - physics.ev_a(i), 0.0) for i, a in enumerate(drawn)) * 3 * VOLTAGE
    decision = planner.energy.decision
    if decision is not None and decision.battery_w is not None:
        physics.command_w = decision.battery_w
        confirmed = BatteryCommandResult(max(-decision.battery_w, 0), max(decision.battery_w, 0))
        planner.energy_commanded("battery:battery", confirmed, now)
    physics.step(1.0)
    return physics.import_w()


@pytest.mark.timeout(TIMEOUT_S)
@settings(PROFILE, suppress_health_check=[HealthCheck.too_slow])
@given(
    ev_max=st.lists(st.sampled_from([10.0, 16.0, 32.0]), min_size=2, max_size=6),
    runs=st.lists(st.tuples(condition, st.integers(0, 63)), min_size=1, max_size=3),
)
# drawn at random in CI: EVs cut 8 -> 0 A under two silent chargers reserved at 32 A, the
# discharge held to the limit while they follow (2.1 kW exported for that cycle)
@example(ev_max=[10.0, 10.0, 10.0, 10.0, 10.0, 32.0], runs=[((10_905.0, 29_594.0, 20.0, 12.0), 48)])
def test_chargers_that_stop_answering_never_make_the_battery_feed_the_grid(
    ev_max: list[float], runs: list[tuple[tuple[float, float, float, float], int]]
) -> None:
    """Silent chargers are reserved at their maximum and their EVs' draw is seen only at
    the grid meter: the battery is still never told to discharge into the grid."""
    planner = planner_for(len(ev_max), charge_from_grid=False)
    physics = Physics(ev_max_a=ev_max, soc=50.0)
    now = 0.0
    physics.base_w = 10_000.0
    for _ in range(6):
        cycle(planner, physics, now)
        now += 1.0
    for (base_w, pv_w, limit_kw, soc), mask in runs:
        physics.base_w, physics.pv_w, physics.soc = base_w, pv_w, soc
        silent = frozenset(i for i in range(len(ev_max)) if mask >> i & 1)
        planner.limits.set(
            SITE, LimitSource.API, Limit(power_kw=limit_kw), now=now, lease_s=None, origin="t"
        )
        for k in range(30):
            import_w = cycle(planner, physics, now, silent)
            now += 1.0
            if k > 0:
                assert_no_discharge_into_the_grid(planner, physics, import_w, k, silent)


def assert_no_discharge_into_the_grid(
    planner: CyclePlanner,
    physics: Physics,
    import_w: float,
    *context: object,
) -> None:
    """The battery never discharges while the site exports, but in the one case the design
    chooses it (docs/control.md, `SiteEnergy._hold_discharge`: the limit first): a cycle in
    which the discharge was held to keep the import within the limit should the EVs cut in
    it not follow yet; they do here within the cycle, so the site exports at most what they
    stopped drawing."""
    if physics.battery_w <= 1.0 or import_w >= -1.0:
        return
    decision = planner.energy.decision
    held = decision is not None and any(
        "the EVs are told to draw less" in r for r in decision.reasons
    )
    found = (*context, import_w, physics.battery_w, physics.shed_w)
    assert held, found
    assert -import_w <= physics.shed_w + 1.0, found


def assert_no_needless_throttling(
    planner: CyclePlanner, physics: Physics, limit_w: float, n: int
) -> None:
    result = planner.last_result
    assert result is not None
    throttled = [
        i
        for i in range(n)
        if _REASONS[result.reason[i]] in _HELD_BY_ROOT
        and result.binding_node[i] == 0
        and physics.setpoint_a[i] < physics.ev_max_a[i] - 1.0
    ]
    if not throttled:
        return
    at_rating = physics.battery_w >= BATTERY_W - 1.0
    empty = physics.soc <= 10.0
    target = min(limit_w, CONNECTION_KW * 1000)
    # what the EVs are given but do not take (an EV below its setpoint until hubgate has
    # learnt its maximum) is import hubgate allocated: at the limit counts it
    unused_w = sum(
        max(physics.setpoint_a[i] - physics.ev_a(i), 0.0) * 3 * VOLTAGE for i in range(n)
    )
    at_limit = physics.import_w() + unused_w >= target - n * STEP_W - 500.0
    assert at_rating or empty or at_limit, (
        throttled,
        physics.battery_w,
        physics.soc,
        physics.import_w(),
        target,
    )


def test_a_battery_does_not_export_while_answering_evs_are_turned_down() -> None:
    """The counterexample the property found (session 6): five 10 A EVs, two of them silent,
    base 0, limit 25 kW, SoC 12 %. The cycle that turns the answering EVs down held the
    discharge to the draw measured before that decrease, and 1.9 kW went into the grid for a
    cycle: the discharge now counts the decreases sent in the same cycle."""
    inner = (
        test_chargers_that_stop_answering_never_make_the_battery_feed_the_grid.hypothesis.inner_test
    )  # type: ignore[attr-defined]
    inner(ev_max=[10.0] * 5, runs=[((0.0, 0.0, 25.0, 12.0), 0b01001)])
