"""The battery and PV policy: examples of each mode, and properties with a real allocator."""

from __future__ import annotations

import math
import tomllib
from dataclasses import replace

from hypothesis import example, given, settings
from hypothesis import strategies as st

from hubgate.config.model import SiteConfig
from hubgate.control.allocation import AllocationSettings, CycleInputs, SiteAllocator
from hubgate.control.energy import (
    BatteryMode,
    BatterySpec,
    EnergyInputs,
    EnergyPolicy,
)
from hubgate.devices.model import BatteryReading

SPEC = BatterySpec(
    max_charge_w=50_000, max_discharge_w=60_000, min_soc_percent=10, max_soc_percent=90
)
PV_ONLY = BatterySpec(50_000, 60_000, 10, 90, charge_from_grid=False)
VOLTAGE = 230.0


def policy(spec: BatterySpec | None = SPEC) -> EnergyPolicy:
    return EnergyPolicy(spec, stale_s=3.0)


def reading(soc: float = 50.0, power_w: float = 0.0, at: float = 0.0) -> BatteryReading:
    return BatteryReading(at=at, soc_percent=soc, power_w=power_w)


def inputs(**kw: object) -> EnergyInputs:
    base: dict[str, object] = {"now": 0.0, "grid_import_w": 100_000.0, "grid_limit_w": 400_000.0}
    base.update(kw)
    return EnergyInputs(**base)  # type: ignore[arg-type]


def test_discharges_to_hold_the_peak_target_when_ev_demand_is_high() -> None:
    # other load 100 kW, EVs draw 0 now but want 200 kW, target 250 kW: 50 kW over
    d = policy().decide(inputs(peak_target_w=250_000, grid_ev_demand_w=200_000, battery=reading()))
    assert d.mode is BatteryMode.PEAK_SHAVING
    assert d.battery_w == 50_000
    assert d.reserve_metered_w == 0  # a discharge is not counted before it is measured
    assert any("discharge 50.0 kW" in r for r in d.reasons)


def test_discharge_is_bounded_by_rating_and_minimum_soc() -> None:
    high = inputs(peak_target_w=150_000, grid_ev_demand_w=500_000, battery=reading())
    assert policy().decide(high).battery_w == 60_000
    empty = inputs(peak_target_w=150_000, grid_ev_demand_w=500_000, battery=reading(soc=10))
    decision = policy().decide(empty)
    assert decision.battery_w == 0
    assert any("cannot discharge" in r for r in decision.reasons)


def test_charges_from_pv_export_and_gives_pv_mode_connectors_the_surplus() -> None:
    # exporting 30 kW while PV-mode EVs draw 10 kW: 40 kW surplus for them, the battery takes 30
    d = policy(PV_ONLY).decide(
        inputs(grid_import_w=-30_000, ev_draw_w=10_000, pv_mode_draw_w=10_000, battery=reading())
    )
    assert d.pv_surplus_w == 40_000
    assert d.mode is BatteryMode.PV_CHARGE
    assert d.battery_w == -30_000
    assert d.reserve_metered_w == 30_000  # its charging counts at once


def test_battery_charging_counts_in_the_surplus_it_could_yield() -> None:
    # the battery charges 20 kW and the site exports 5 kW: 25 kW surplus for PV-mode connectors
    d = policy().decide(inputs(grid_import_w=-5_000, battery=reading(power_w=-20_000)))
    assert d.pv_surplus_w == 25_000


def test_charges_from_spare_headroom_only_when_allowed() -> None:
    quiet = inputs(
        peak_target_w=150_000, grid_ev_demand_w=20_000, evs_held=False, battery=reading()
    )
    d = policy().decide(quiet)
    assert d.mode is BatteryMode.GRID_CHARGE
    assert d.battery_w == -30_000  # 150 - 100 - 20
    assert policy(PV_ONLY).decide(quiet).battery_w == 0
    # an EV the connection holds back (or not known not to be) takes that room first
    assert policy().decide(replace(quiet, evs_held=True)).battery_w == 0


def test_full_battery_does_not_charge() -> None:
    d = policy().decide(inputs(grid_import_w=-30_000, battery=reading(soc=90)))
    assert d.battery_w == 0
    assert d.mode is BatteryMode.IDLE


def test_unreachable_battery_is_assumed_to_stop_discharging_and_keep_charging() -> None:
    p = policy(PV_ONLY)
    p.decide(inputs(grid_import_w=-10_000, battery=reading(power_w=-8_000)))
    assert p.last_command_w == -18_000
    silent = p.decide(inputs(now=10.0, grid_import_w=-10_000, battery=reading(power_w=-8_000)))
    assert silent.mode is BatteryMode.UNAVAILABLE
    assert silent.battery_w is None
    assert silent.reserve_unmetered_w == 18_000  # its last command
    assert silent.reserve_metered_w == 10_000  # beyond the 8 kW the meter saw
    assert silent.battery_budget_w == 0


def test_unreachable_discharging_battery_is_assumed_to_stop() -> None:
    p = policy()
    p.decide(inputs(peak_target_w=250_000, grid_ev_demand_w=200_000, battery=reading()))
    p.decide(
        inputs(
            now=1.0,
            peak_target_w=250_000,
            grid_ev_demand_w=200_000,
            battery=reading(power_w=50_000, at=1.0),
        )
    )
    lost = p.decide(inputs(now=9.0, grid_import_w=50_000, battery=reading(power_w=50_000, at=1.0)))
    assert lost.reserve_metered_w == 50_000  # the discharge the meter saw may vanish
    assert lost.pv_surplus_w == 0


def test_without_a_grid_meter_the_battery_idles_and_there_is_no_surplus() -> None:
    d = policy().decide(inputs(grid_import_w=None, battery=reading(power_w=-5_000)))
    assert d.mode is BatteryMode.NO_GRID_METER
    assert d.battery_w == 0
    assert d.pv_surplus_w == 0


def test_direction_changes_wait_for_the_dwell() -> None:
    p = policy(PV_ONLY)
    charge = p.decide(inputs(grid_import_w=-20_000, battery=reading()))
    assert charge.battery_w == -20_000
    peak = inputs(now=1.0, peak_target_w=150_000, grid_ev_demand_w=200_000, battery=reading())
    assert p.decide(peak).battery_w == 0
    # idling in between does not shorten the dwell
    assert p.decide(inputs(now=2.0, battery=reading(at=2.0))).battery_w == 0
    assert p.decide(replace(peak, now=2.5)).battery_w == 0
    later = inputs(
        now=3.5, peak_target_w=150_000, grid_ev_demand_w=200_000, battery=reading(at=3.5)
    )
    assert p.decide(later).battery_w == 60_000


def test_deadband_holds_only_where_it_imports_no_more() -> None:
    p = policy(PV_ONLY)
    p.decide(inputs(grid_import_w=-20_000, battery=reading()))
    # a little less export: the charge drops at once (more would import)
    assert p.decide(inputs(now=1, grid_import_w=-19_800, battery=reading())).battery_w == -19_800
    # a little more export: the charge stays within the deadband
    assert p.decide(inputs(now=2, grid_import_w=-20_000, battery=reading())).battery_w == -19_800


def test_deadband_never_holds_a_discharge_the_policy_turned_into_a_charge() -> None:
    p = policy(PV_ONLY)
    p.reverse_dwell_s = 0.0
    p.decide(inputs(peak_target_w=99_900, battery=reading()))  # 100 W over: discharge
    assert p.last_command_w == 100
    # at the minimum SoC with 300 W exported: a small charge, never the held discharge
    d = p.decide(inputs(now=1, grid_import_w=-300, battery=reading(soc=10, at=1)))
    assert d.battery_w == -300


def test_no_battery_still_gives_the_pv_surplus() -> None:
    d = policy(None).decide(inputs(grid_import_w=-7_000, pv_mode_draw_w=3_000))
    assert d.battery_w is None
    assert d.pv_budget_w == 10_000


def test_a_discharge_never_feeds_the_grid() -> None:
    # the site draws 5 kW (import 5, battery idle) while held EVs want far more: 5 kW at most
    d = policy().decide(
        inputs(grid_import_w=5_000, peak_target_w=1_000, grid_ev_demand_w=90_000, battery=reading())
    )
    assert d.battery_w == 5_000
    assert any("what the site draws now" in r for r in d.reasons)


def test_without_held_evs_a_discharge_only_holds_the_import_at_the_target() -> None:
    # the EVs are not held back by the connection: more room would not be used
    free = inputs(
        grid_import_w=300_000,
        peak_target_w=250_000,
        grid_ev_demand_w=400_000,
        evs_held=False,
        battery=reading(),
    )
    assert policy().decide(free).battery_w == 50_000
    held = replace(free, evs_held=True)  # held back: the discharge gives them what they lack
    assert policy().decide(held).battery_w == 60_000


def test_a_discharge_eases_off() -> None:
    p = policy()
    p.decide(inputs(peak_target_w=100_000, grid_ev_demand_w=100_000, battery=reading()))
    assert p.last_command_w == 60_000
    # a second on, the EVs need only 10 kW more: 6 kW less per second (60 kW over 10 s)
    eased = p.decide(
        inputs(
            now=1.0,
            grid_import_w=40_000,
            peak_target_w=100_000,
            grid_ev_demand_w=10_000,
            evs_held=False,
            battery=reading(power_w=60_000, at=1.0),
        )
    )
    assert eased.battery_w == 54_000


# -- properties ---------------------------------------------------------------------------

watts = st.floats(min_value=0, max_value=400_000)
specs = st.builds(
    BatterySpec,
    max_charge_w=st.floats(0, 200_000),
    max_discharge_w=st.floats(0, 200_000),
    min_soc_percent=st.floats(0, 40),
    max_soc_percent=st.floats(60, 100),
    charge_from_grid=st.booleans(),
)
steps = st.lists(
    st.tuples(
        st.floats(-200_000, 400_000),  # other load (PV included)
        watts,  # EV draw
        watts,  # EV demand
        st.floats(0, 100),  # SoC
        st.floats(-200_000, 200_000),  # battery power
        st.booleans(),  # battery answered
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=200, deadline=None)
@given(spec=specs, limit=st.floats(50_000, 800_000), target=watts, steps=steps)
def test_battery_stays_within_its_ratings_soc_window_and_the_limit(
    spec: BatterySpec, limit: float, target: float, steps: list[tuple[float, ...]]
) -> None:
    p = EnergyPolicy(spec, stale_s=3.0)
    for t, (other, ev, demand, soc, power, answered) in enumerate(steps):
        power = max(-spec.max_charge_w, min(power, spec.max_discharge_w))
        grid = other + ev - power
        bat = BatteryReading(float(t), soc, power) if answered else None
        d = p.decide(EnergyInputs(t, grid, limit, target, ev, demand, 0.0, bat))
        if d.battery_w is None:
            continue
        assert -spec.max_charge_w - 1e-6 <= d.battery_w <= spec.max_discharge_w + 1e-6
        if d.battery_w > 0:
            assert soc > spec.min_soc_percent
        if d.battery_w < 0:
            assert soc < spec.max_soc_percent
            assert -d.battery_w <= max(0.0, limit - (other + ev)) + 1e-6


SITE = """
[site]
name = "p"
[grid]
phase_current_limit_a = 2000
power_limit_kw = {limit_kw}
[[chargers]]
id = "cp"
node = "grid"
ocpp = {{ identity = "cp" }}
connectors = [{connectors}]
"""


@settings(max_examples=150, deadline=None)
@given(
    limit_kw=st.floats(50, 400),
    other=st.floats(-100_000, 300_000),
    soc=st.floats(0, 100),
    power=st.floats(-60_000, 60_000),
    answered=st.booleans(),
    drawn=st.floats(0, 1),
    target_share=st.floats(0.2, 1.0),
    n=st.integers(1, 8),
)
def test_grid_import_never_exceeds_the_site_limit_with_the_allocator(
    limit_kw: float,
    other: float,
    soc: float,
    power: float,
    answered: bool,
    drawn: float,
    target_share: float,
    n: int,
) -> None:
    """Battery command, then allocation on the reserved base: import stays under the limit."""
    connectors = ", ".join(f"{{ id = {i}, max_current_a = 32 }}" for i in range(1, n + 1))
    site = SiteConfig.model_validate(
        tomllib.loads(SITE.format(limit_kw=limit_kw, connectors=connectors))
    )
    allocator = SiteAllocator(site)
    limit = limit_kw * 1000
    ev_max_w = 32 * 3 * VOLTAGE
    ev_draw = drawn * n * ev_max_w
    measured_import = -power
    if other + ev_draw + max(measured_import, 0.0) > limit:
        return  # already over before hubgate acts: nothing to prove this cycle
    p = EnergyPolicy(SPEC, stale_s=3.0, last_power_w=power, last_command_w=power)
    bat = BatteryReading(0.0, soc, power) if answered else None
    grid = other + ev_draw + measured_import
    d = p.decide(
        EnergyInputs(0.0, grid, limit, target_share * limit, ev_draw, n * ev_max_w, 0.0, bat)
    )
    # the loop's base: what the meter shows besides the EVs (signed), plus the reserve
    base_w = other + measured_import + d.reserve_metered_w
    per_phase = base_w / (3 * VOLTAGE)
    result = allocator.allocate(
        CycleInputs(
            0.0,
            allocator.base_load({"grid": (per_phase, per_phase, per_phase)}),
            [math.inf] * n,
            [True] * n,
        )
    )
    evs = sum(a * 3 * VOLTAGE for a in result.setpoint_a)
    if d.battery_w is None:
        battery_import = max(measured_import, -p.last_command_w, 0.0)
    else:
        battery_import = max(measured_import, -d.battery_w)
    assert other + battery_import + evs <= limit + 1e-3


@settings(max_examples=200, deadline=None)
@given(
    limit_kw=st.floats(60, 300),
    n=st.integers(1, 6),
    steps=st.lists(
        st.tuples(
            st.floats(-80_000, 200_000),  # other load this cycle (PV included)
            st.floats(0, 1),  # where the battery lands between its power and its command
            st.booleans(),  # the battery answers
            st.floats(0.2, 1.0),  # peak target as a share of the limit
            st.sampled_from([5.0, 10.0, 30.0, 60.0, 90.0, 95.0]),  # SoC, the window's edges too
        ),
        min_size=2,
        max_size=12,
    ),
)
@example(  # discharging at the limit, then the SoC floor: the lost discharge is reserved at once
    limit_kw=100.0,
    n=6,
    steps=[
        (70_000.0, 1.0, True, 0.3, 60.0),
        (70_000.0, 1.0, True, 0.3, 60.0),
        (70_000.0, 0.5, True, 0.3, 5.0),
    ],
)
def test_a_run_of_cycles_never_imports_above_the_limit(
    limit_kw: float, n: int, steps: list[tuple[float, float, bool, float, float]]
) -> None:
    """Cycle after cycle: meter, policy, allocation on the reserved base, then the EVs take
    their setpoints and the battery lands anywhere between its power and its command (or,
    silent, between its power and its last command): the import stays under the limit."""
    connectors = ", ".join(f"{{ id = {i}, max_current_a = 32 }}" for i in range(1, n + 1))
    site = SiteConfig.model_validate(
        tomllib.loads(SITE.format(limit_kw=limit_kw, connectors=connectors))
    )
    # no dwell, interval or settling: every setpoint may change every cycle
    allocator = SiteAllocator(site, AllocationSettings(0.0, 0.0, 0.0, math.inf, 0.0))
    limit = limit_kw * 1000
    p = EnergyPolicy(SPEC, stale_s=3.0, reverse_dwell_s=0.0)
    ev_w, battery_power, commanded = 0.0, 0.0, 0.0
    for t, (other, landing, answered, target_share, soc) in enumerate(steps):
        grid = other + ev_w - battery_power
        bat = BatteryReading(float(t), soc, battery_power) if answered else None
        d = p.decide(
            EnergyInputs(
                float(t), grid, limit, target_share * limit, ev_w, n * 32 * 3 * VOLTAGE, 0.0, bat
            )
        )
        base_w = other - battery_power + d.reserve_metered_w
        per_phase = base_w / (3 * VOLTAGE)
        result = allocator.allocate(
            CycleInputs(
                float(t),
                allocator.base_load({"grid": (per_phase, per_phase, per_phase)}),
                [math.inf] * n,
                [True] * n,
            )
        )
        if d.battery_w is not None:
            commanded = d.battery_w
        battery_power += landing * (commanded - battery_power)
        ev_w = sum(a * 3 * VOLTAGE for a in result.setpoint_a)
        if other + max(-battery_power, 0.0) > limit:
            return  # the site alone is over: nothing the EVs can fix
        assert other + ev_w - battery_power <= limit + 1e-3, (t, d)
