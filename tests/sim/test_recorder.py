"""The safety recorder: over-limit beyond the reaction time is flagged, transients are not."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from hubgate.sim import (
    ClosedLoop,
    NaiveEqualShareController,
    SafetyRecorder,
    Simulation,
    load_scenario,
    run_fast,
)
from hubgate.sim.electrical import PhaseLimit
from hubgate.sim.recorder import DemandRule, Summary

LIMIT: PhaseLimit = (100.0, 100.0, 100.0)


def feed(recorder: SafetyRecorder, l1: list[float], limits: list[PhaseLimit] | None = None) -> None:
    """One node; L1 follows `l1` second by second, L2 and L3 stay at 50 A."""
    for t, amps in enumerate(l1):
        limit = limits[t] if limits else LIMIT
        recorder.record(float(t), 1.0, [amps, 50.0, 50.0], [limit], 0.0)


def test_flags_an_injected_over_limit() -> None:
    recorder = SafetyRecorder(["grid"], reaction_s=7.0)
    feed(recorder, [90.0] * 10 + [120.0] * 30 + [90.0] * 10)
    summary = recorder.summary()
    [violation] = summary.violations
    assert (violation.node, violation.phase) == ("grid", "L1")
    assert (violation.start_s, violation.end_s, violation.cause_s) == (10.0, 40.0, 10.0)
    assert violation.seconds_beyond == pytest.approx(23.0)
    assert violation.worst_excess_a == pytest.approx(20.0)
    assert summary.peaks[0].amps == 120.0
    assert summary.peaks[0].seconds_above_limit == 30.0


def test_a_transient_shorter_than_the_reaction_time_is_not_flagged() -> None:
    recorder = SafetyRecorder(["grid"], reaction_s=7.0)
    feed(recorder, [90.0] * 10 + [150.0] * 7 + [90.0] * 10)
    summary = recorder.summary()
    assert summary.violations == ()
    assert summary.peaks[0].seconds_above_limit == 7.0


def test_time_counts_from_the_limit_drop_that_caused_it() -> None:
    high: PhaseLimit = (200.0, 200.0, 200.0)
    # The limit drops at 10 s; the current only comes under it at 16 s: tolerated.
    recorder = SafetyRecorder(["grid"], reaction_s=7.0)
    feed(recorder, [150.0] * 16 + [90.0] * 10, [high] * 10 + [LIMIT] * 16)
    assert recorder.summary().violations == ()
    # Coming under it only at 20 s: 3 s too long, counted from the drop at 10 s.
    recorder = SafetyRecorder(["grid"], reaction_s=7.0)
    feed(recorder, [150.0] * 20 + [90.0] * 10, [high] * 10 + [LIMIT] * 20)
    [violation] = recorder.summary().violations
    assert violation.cause_s == 10.0
    assert violation.seconds_beyond == pytest.approx(3.0)


def test_an_excursion_still_open_at_the_end_is_reported() -> None:
    recorder = SafetyRecorder(["grid"], reaction_s=2.0)
    feed(recorder, [90.0, 110.0, 110.0, 110.0, 110.0])
    [violation] = recorder.summary().violations
    assert violation.end_s == 5.0
    assert violation.seconds_beyond == pytest.approx(2.0)


def test_summary_as_text_and_json() -> None:
    recorder = SafetyRecorder(["grid", "board"], reaction_s=5.0)
    for t in range(20):
        recorder.record(float(t), 1.0, [120.0, 0, 0, 10.0, 10.0, 10.0], [LIMIT, None], 0.5)
    summary = recorder.summary()
    data = json.loads(summary.to_json())
    assert data["energy_delivered_kwh"] == pytest.approx(10.0)
    assert data["violation_seconds"] == pytest.approx(15.0)
    assert [p["node"] for p in data["peaks"]] == ["grid", "board"]
    text = summary.to_text()
    assert "energy delivered 10.00 kWh" in text
    assert "VIOLATION grid L1" in text
    assert len(recorder.currents[3]) == 20
    assert recorder.limits[3][0] == float("inf")


def test_a_nodes_power_and_the_connections_own_power_limit_are_judged() -> None:
    """Power limits, not only the grid operator's: the connection's own (with the operator
    at 100 %) and a node's, each as its average current per phase (230 V)."""
    recorder = SafetyRecorder(
        ["grid", "board"], reaction_s=2.0, power_limits_w=(69_000.0, 34_500.0)
    )
    for t in range(10):  # grid 3 x 110 A = 75.9 kW over 69 kW; board 3 x 60 A over 34.5 kW
        recorder.record(float(t), 1.0, [110.0] * 3 + [60.0] * 3, [None, None], 0.0)
    violations = recorder.summary().violations
    assert [(v.node, v.phase) for v in violations] == [("board", "P"), ("grid", "P")]
    assert [v.worst_excess_a for v in violations] == pytest.approx([10.0, 10.0])
    assert recorder.summary().peaks[1].seconds_above_limit == 10.0
    lower = SafetyRecorder(["grid"], reaction_s=2.0, power_limits_w=(1e6,))
    for t in range(10):  # the operator's limit, lower than the connection's, is in force
        lower.record(float(t), 1.0, [110.0] * 3, [None], 0.0, grid_power_limit_w=69_000.0)
    assert [(v.node, v.phase) for v in lower.summary().violations] == [("grid", "P")]


def test_the_demand_peak_is_the_highest_clock_aligned_interval_average() -> None:
    """900 s intervals, the run starting 600 s into one: 300 s at 60 kW close it (20 kW
    average), then 900 s at 40 kW and one at 61.2 kW (2 % over the 60 kW target)."""
    rule = DemandRule(900.0, 60_000.0, start_s=600.0)
    recorder = SafetyRecorder(["grid"], reaction_s=2.0, demand=rule)
    amps = [a * 1000 / 690 for a in [60.0] * 300 + [40.0] * 900 + [61.2] * 900]
    for t, a in enumerate(amps):
        recorder.record(float(t), 1.0, [a] * 3, [None], 0.0)
    summary = recorder.summary()
    assert summary.demand_peak_kw == pytest.approx(61.2)
    assert summary.demand_target_kw == 60.0
    assert not summary.demand_kept
    assert "demand peak: 61.2 kW of 60 kW target (over)" in summary.to_text()
    within = Summary(1.0, 1.0, 0.0, (), (), demand_peak_kw=60.5, demand_target_kw=60.0)
    assert within.demand_kept  # DEMAND_TOLERANCE


class StoppingController:
    """The naive controller until `stop_s`, then nothing: a gateway that died."""

    def __init__(self, sim: Simulation, stop_s: float) -> None:
        self._inner = NaiveEqualShareController(sim)
        self.period_s = self._inner.period_s
        self._stop_s = stop_s

    def update(self, sim: Simulation) -> None:
        if sim.now < self._stop_s:
            self._inner.update(sim)


def test_a_limit_step_nobody_acts_on_is_flagged(
    write_scenario: Callable[..., Path],
) -> None:
    extra = '\n[[events]]\nat_s = 60\nkind = "grid-limit"\npercent = 30\n'
    path = write_scenario(extra)
    acting = Simulation(load_scenario(path))
    run_fast(ClosedLoop(acting, NaiveEqualShareController(acting)), 200)
    assert acting.recorder.summary().violations == ()
    assert max(acting.recorder.currents[0][:60]) > 60.0  # above the 30 % limit before
    idle = Simulation(load_scenario(path))
    run_fast(ClosedLoop(idle, StoppingController(idle, stop_s=60)), 200)
    violations = idle.recorder.summary().violations
    assert violations
    assert {v.node for v in violations} == {"grid"}
    assert all(v.cause_s == 60.0 for v in violations)


def test_the_naive_controller_keeps_the_power_limit_and_the_demand_target(
    write_scenario: Callable[..., Path], site_text: str
) -> None:
    """Judged by the same rules as hubgate: a power limit on the connection at half of what
    the naive controller takes without one holds it, and so does a demand target at a third."""

    def run(extra_site: str, grid: str = "") -> Summary:
        site = site_text.replace("limit_a = 200\n", f"limit_a = 200\n{grid}", 1) + extra_site
        sim = Simulation(load_scenario(write_scenario(site=site)))
        run_fast(ClosedLoop(sim, NaiveEqualShareController(sim)), 900)
        summary = sim.recorder.summary()
        assert summary.violations == ()
        return summary

    free = run("\n[demand]\n").demand_peak_kw  # one whole interval: its average draw
    half = run("", grid=f"power_limit_kw = {free / 2:.1f}\n").demand_peak_kw
    third = run(f"\n[demand]\ntarget_kw = {free / 3:.1f}\n")
    assert 0.3 * free < half <= 0.5 * free
    assert third.demand_kept
    assert 0.2 * free < third.demand_peak_kw <= free / 3
