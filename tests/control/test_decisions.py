"""The decision log keeps the newest records only."""

from __future__ import annotations

import pytest

from hubgate.control.decisions import ConnectorDecision, DecisionLog, DecisionRecord


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
