"""The decision log: what each control cycle saw, what bound it and what it commanded.

Bounded, so a gateway that runs for months keeps the recent past only. The
API and dashboard read it; the control loop appends one record per cycle.
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import overload


@dataclass(frozen=True)
class ConnectorDecision:
    """The outcome for one connector in one cycle."""

    connector: str
    setpoint_a: float
    phases: int
    reason: str
    binding: str | None = None
    """The constraint that bound it, e.g. `feeder-3/L2`, when one did."""


@dataclass(frozen=True, slots=True, eq=False)
class ConnectorColumns(Sequence[ConnectorDecision]):
    """One cycle's decisions as the allocator's columns, a `ConnectorDecision` built when
    read: about 15 bytes per connector (the names shared by every record), where a tuple
    of decisions took about 140 (a 500-connector site's log of 3,600 records: about 26
    MiB instead of 250)."""

    names: Sequence[str]
    """Connector names, in connector order."""
    node_ids: Sequence[str]
    reason_names: Sequence[str]
    """Reason names by code."""
    setpoint_a: array[float]
    phases: array[int]
    reason: array[int]
    binding_node: array[int]
    """Index into `node_ids` of the binding limit, or -1."""
    binding_phase: array[int]
    """Grid phase (0-2) of the binding limit, or -1."""

    def __len__(self) -> int:
        return len(self.names)

    @overload
    def __getitem__(self, index: int) -> ConnectorDecision: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[ConnectorDecision, ...]: ...
    def __getitem__(self, index: int | slice) -> ConnectorDecision | tuple[ConnectorDecision, ...]:
        if isinstance(index, slice):
            return tuple(self[i] for i in range(*index.indices(len(self))))
        i = range(len(self))[index]  # (negative indices; IndexError past the end)
        node = self.binding_node[i]
        binding = None
        if node >= 0:
            phase = self.binding_phase[i]
            binding = self.node_ids[node] + (f"/L{phase + 1}" if phase >= 0 else "")
        return ConnectorDecision(
            self.names[i],
            self.setpoint_a[i],
            self.phases[i],
            self.reason_names[self.reason[i]],
            binding,
        )

    def __iter__(self) -> Iterator[ConnectorDecision]:
        return (self[i] for i in range(len(self)))


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
    connectors: Sequence[ConnectorDecision]
    """One per connector (`ConnectorColumns` from the loop)."""
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
