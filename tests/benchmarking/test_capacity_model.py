"""From a measured end-to-end cycle to the largest site a cycle holds, and what the run kept."""

from __future__ import annotations

import dataclasses

import pytest

from hubgate.benchmarking.capacity import HEADROOM, max_connectors
from hubgate.benchmarking.end_to_end import CycleRun

RUN = CycleRun(
    scenario="depot-200-steady",
    connectors=200,
    modbus_connectors=100,
    ocpp_connectors=100,
    devices=214,
    cycle_s=1.0,
    cycles=4,
    window_s=4.1,
    cpu_s=0.2,
    cycle_cpu_ms=(40.0, 60.0, 45.0, 55.0),
    latency_p50_ms=80.0,
    latency_p99_ms=150.0,
    latency_max_ms=150.0,
    ocpp_stations_online=50,
    devices_reachable=214,
    load_before=1.0,
    load_after=1.2,
    rss_mib=90.0,
)
"""50 ms of CPU per 1 s cycle for 200 connectors: 250 us per connector."""


def test_capacity_scales_the_cost_per_connector_to_the_headroom() -> None:
    assert RUN.cpu_per_cycle_s == pytest.approx(0.05)
    assert RUN.cpu_per_connector_s == pytest.approx(250e-6)
    assert max_connectors(RUN) == 2_000  # 0.5 s / 250 us
    assert max_connectors(RUN, headroom=1.0) == 4_000
    assert HEADROOM == 0.5


def test_a_faster_cycle_or_a_costlier_connector_holds_fewer() -> None:
    fast = dataclasses.replace(RUN, cycle_s=0.1, window_s=0.41, latency_max_ms=90.0)
    assert max_connectors(fast) == 200
    costly = dataclasses.replace(RUN, cpu_s=0.8)
    assert max_connectors(costly) == 500


def test_the_report_says_whether_the_loop_kept_its_cycle() -> None:
    assert RUN.kept_cycle
    assert not dataclasses.replace(RUN, window_s=4.5).kept_cycle  # 12 % behind
    assert not dataclasses.replace(RUN, latency_max_ms=1_001.0).kept_cycle
    figures = RUN.as_json()
    assert figures["cpu_per_cycle_ms"] == pytest.approx(50.0)
    assert figures["cpu_per_cycle_median_ms"] == pytest.approx(50.0)
    assert figures["cpu_per_connector_us"] == pytest.approx(250.0)
    assert "cycle_cpu_ms" not in figures
