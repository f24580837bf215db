"""The decision log keeps the newest records only, each cycle's decisions as columns."""

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
