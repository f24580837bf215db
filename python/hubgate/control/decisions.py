"""The decision log: what each control cycle saw, what bound it and what it commanded.

Bounded, so a gateway that runs for months keeps the recent past only. The
API and dashboard read it; the control loop appends one record per cycle.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ConnectorDecision:
    """The outcome for one connector in one cycle."""

    connector: str
    setpoint_a: float
    phases: int
    reason: str
    binding: str | None = None
    """The constraint that bound it, e.g. `feeder-3/L2`, when one did."""


Phases3 = tuple[float, float, float]


@dataclass(frozen=True)
class GridSample:
    """The grid connection in one cycle: what it carried, the limit in force and its source."""

    wall_time: float
    measured_a: Phases3 | None
    """Signed: negative on a phase that exports; None without a trusted meter."""
    commanded_a: Phases3
    limit_a: Phases3
    limit_kw: float
    source: str


@dataclass(frozen=True)
class DecisionRecord:
    """One control cycle: inputs, the limits that bound, outputs."""

    cycle: int
    at: float
    inputs: Mapping[str, object]
    connectors: tuple[ConnectorDecision, ...]
    notes: tuple[str, ...] = ()
    grid: GridSample | None = None


@dataclass
class DecisionLog:
    """The last `size` decision records."""

    size: int = 3_600
    _records: deque[DecisionRecord] = field(init=False)

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"size must be at least 1, got {self.size}")
        self._records = deque(maxlen=self.size)

    def append(self, record: DecisionRecord) -> None:
        """Add a record, dropping the oldest when full."""
        self._records.append(record)

    def recent(self, count: int) -> list[DecisionRecord]:
        """The `count` newest records, oldest first."""
        return list(self._records)[-count:] if count > 0 else []

    def __len__(self) -> int:
        return len(self._records)
