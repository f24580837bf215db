"""The decision log keeps the newest records only (each cycle's decisions as columns), and
the grid samples for longer."""

from __future__ import annotations

from array import array
from pathlib import Path

import pytest

from hubgate.config import load_site
from hubgate.control.allocation import REASON_NAMES, CycleInputs, SiteAllocator
from hubgate.control.decisions import (
    ConnectorColumns,
    ConnectorDecision,
    DecisionLog,
    DecisionRecord,
    GridSample,
)


def record(cycle: int) -> DecisionRecord:
    decision = ConnectorDecision("cp-1#1", 16.0, 3, "fair-share", "feeder-1/L2")
    return DecisionRecord(cycle, float(cycle), {"grid_a": (10.0, 11.0, 12.0)}, (decision,))


def test_bounded_and_ordered() -> None:
    log = DecisionLog(size=3)
    for cycle in range(5):
        log.append(record(cycle))
    assert len(log) == 3
    assert [r.cycle for r in log.recent(2)] == [3, 4]
    assert [r.cycle for r in log.recent(10)] == [2, 3, 4]
    assert log.recent(0) == []


def test_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        DecisionLog(size=0)


def columns() -> ConnectorColumns:
    return ConnectorColumns(
        ("cp-1#1", "cp-1#2", "cp-2#1"),
        ("grid", "feeder-1"),
        ("FAIR_SHARE", "PHASE_CURRENT", "POWER_LIMIT"),
        array("d", [16.0, 6.5, 0.0]),
        array("B", [3, 1, 3]),
        array("B", [0, 1, 2]),
        array("i", [-1, 1, 0]),
        array("b", [-1, 1, -1]),
    )


def test_columns_read_as_decisions() -> None:
    decisions = columns()
    assert len(decisions) == 3
    assert list(decisions) == [
        ConnectorDecision("cp-1#1", 16.0, 3, "FAIR_SHARE", None),
        ConnectorDecision("cp-1#2", 6.5, 1, "PHASE_CURRENT", "feeder-1/L2"),
        ConnectorDecision("cp-2#1", 0.0, 3, "POWER_LIMIT", "grid"),
    ]
    assert decisions[-1] == decisions[2]
    assert decisions[1:] == (decisions[1], decisions[2])
    with pytest.raises(IndexError):
        decisions[3]


def test_a_cycles_columns_are_the_allocators_decisions(examples_dir: Path) -> None:
    site = SiteAllocator(load_site(examples_dir / "sites" / "depot-200.toml"))
    n = len(site.connector_keys)
    base = [40.0, 40.0, 40.0] * len(site.node_ids)
    result = site.allocate(CycleInputs(0.0, base, [32.0] * n, [i % 3 != 0 for i in range(n)]))
    decisions = result.decisions()
    assert [d.connector for d in decisions] == list(site.connector_names)
    assert [d.setpoint_a for d in decisions] == list(result.setpoint_a)
    assert [d.phases for d in decisions] == list(result.phases)
    assert {d.reason for d in decisions} <= set(REASON_NAMES)
    assert any(d.binding is not None for d in decisions)


def test_grid_samples_outlive_the_full_records() -> None:
    log = DecisionLog(size=2, history=4)
    for cycle in range(6):
        grid = GridSample(float(cycle), None, (1.0, 2.0, 3.0), (9.0, 9.0, 9.0), 6.0, "cap")
        log.append(DecisionRecord(cycle, float(cycle), {}, (), grid=grid))
    log.append(record(6))  # no grid sample (no meter yet): nothing to chart
    assert [r.cycle for r in log.recent(10)] == [5, 6]
    assert [(cycle, grid.wall_time) for cycle, grid in log.grid_history(10)] == [
        (2, 2.0),
        (3, 3.0),
        (4, 4.0),
        (5, 5.0),
    ]
    assert [cycle for cycle, _ in log.grid_history(2)] == [5]  # the newest 2 cycles: 5 and 6
    assert log.grid_history(0) == []


def test_grid_samples_read_back_as_appended() -> None:
    log = DecisionLog(size=1, history=3)
    samples = [
        GridSample(1.5, (1.0, -2.0, 3.25), (4.0, 5.0, 6.0), (7.0, 8.0, 9.0), 10.5, "cap"),
        GridSample(2.5, None, (0.0, 0.0, 0.0), (32.0, 32.0, 32.0), 22.0, "grid-operator"),
    ]
    for cycle, grid in enumerate(samples, start=7):
        log.append(DecisionRecord(cycle, float(cycle), {}, (), grid=grid))
    assert log.grid_history(5) == [(7, samples[0]), (8, samples[1])]


def test_what_repeats_from_the_previous_record_is_shared() -> None:
    def cycle_record(cycle: int, notes: list[str], base: tuple[float, ...]) -> DecisionRecord:
        inputs = {"peak_w": 5000.0, "base_load_a": {"grid": base, "feeder-1": (1.0, 1.0, 1.0)}}
        return DecisionRecord(cycle, float(cycle), inputs, (), notes=tuple(notes))

    log = DecisionLog(size=3)
    log.append(cycle_record(1, ["cp-1#1 failsafe not verified: 32 A reserved"], (1.0, 2.0, 3.0)))
    fresh = "".join(["cp-1#1 failsafe", " not verified: 32 A reserved"])  # equal, not the same
    log.append(cycle_record(2, ["cp-2#1 starting", fresh], (1.0, 2.0, 4.0)))
    first, second = log.recent(2)
    assert second.notes == ("cp-2#1 starting", fresh)
    assert second.notes[1] is first.notes[0]
    assert second.inputs == {
        "peak_w": 5000.0,
        "base_load_a": {"grid": (1.0, 2.0, 4.0), "feeder-1": (1.0, 1.0, 1.0)},
    }
    base, earlier = second.inputs["base_load_a"], first.inputs["base_load_a"]
    assert isinstance(base, dict)
    assert isinstance(earlier, dict)
    assert base["feeder-1"] is earlier["feeder-1"]
    assert base["grid"] is not earlier["grid"]
    log.append(cycle_record(3, ["cp-2#1 starting", fresh], (1.0, 2.0, 4.0)))
    assert log.recent(1)[0].notes is second.notes
    assert log.recent(1)[0].inputs is second.inputs


def test_columns_equal_to_the_previous_records_are_shared() -> None:
    log = DecisionLog(size=3)
    first = columns()
    log.append(DecisionRecord(1, 1.0, {}, first))
    changed = columns()
    changed.setpoint_a[1] = 7.0  # one setpoint moved; phases, reasons and bindings did not
    log.append(DecisionRecord(2, 2.0, {}, changed))
    older, newer = log.recent(2)
    assert isinstance(newer.connectors, ConnectorColumns)
    assert [d.setpoint_a for d in newer.connectors] == [16.0, 7.0, 0.0]
    assert list(newer.connectors)[1:] == list(changed)[1:]
    assert newer.connectors.setpoint_a is changed.setpoint_a
    assert older.connectors.setpoint_a is first.setpoint_a
    for column in ("phases", "reason", "binding_node", "binding_phase"):
        assert getattr(newer.connectors, column) is getattr(first, column)
