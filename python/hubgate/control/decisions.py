"""The decision log: what each control cycle saw, what bound it and what it commanded.

Bounded, so a gateway that runs for months keeps the recent past only. The
API and dashboard read it; the control loop appends one record per cycle.
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import TypeVar, overload


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


@dataclass(frozen=True, slots=True)
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


_T = TypeVar("_T")


@dataclass
class DecisionLog:
    """The last `size` decision records, and the grid samples of the last `history` cycles
    (the dashboard's chart): a record of a 200-connector site takes a few KiB (its inputs,
    columns and notes; what equals the previous record's is shared with it), a grid sample
    about 100 bytes in columns allocated at the start, so the full records are kept for
    minutes and the samples for an hour at the default 1 s cycle."""

    size: int = 600
    history: int = 3_600
    _records: deque[DecisionRecord] = field(init=False)
    _grid: _GridColumns = field(init=False)
    _last_cycle: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        if self.size < 1 or self.history < 1:
            raise ValueError(
                f"size and history must be at least 1, got {self.size}, {self.history}"
            )
        self._records = deque(maxlen=self.size)
        self._grid = _GridColumns(self.history)

    def append(self, record: DecisionRecord) -> None:
        """Add a record, dropping the oldest when full."""
        if self._records:
            record = _sharing(record, self._records[-1])
        self._records.append(record)
        self._last_cycle = record.cycle
        if record.grid is not None:
            self._grid.append(record.cycle, record.grid)

    def recent(self, count: int) -> list[DecisionRecord]:
        """The `count` newest records (at most `size`), oldest first."""
        return _newest(self._records, count)

    def grid_history(self, count: int) -> list[tuple[int, GridSample]]:
        """The grid samples of the newest `count` cycles (at most `history`; a cycle without
        one has none), with their cycle numbers, oldest first."""
        return self._grid.since(self._last_cycle - count) if count >= 1 else []

    def __len__(self) -> int:
        return len(self._records)


_GRID_FIELDS = 11
"""wall time, measured (3), commanded (3), limit (3), limit kW."""


class _GridColumns:
    """The grid samples of the last `size` cycles in columns allocated at once (a ring):
    about 100 bytes a sample where a `GridSample` with its tuples takes about 600, and
    nothing to allocate as the hour fills."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._count = 0
        self._next = 0
        self._cycles = array("q", bytes(8 * size))
        self._values = array("d", bytes(8 * _GRID_FIELDS * size))
        self._measured = array("b", bytes(size))
        self._sources: list[str] = [""] * size

    def append(self, cycle: int, grid: GridSample) -> None:
        at = self._next
        self._cycles[at] = cycle
        measured = grid.measured_a or (0.0, 0.0, 0.0)
        self._measured[at] = grid.measured_a is not None
        first = at * _GRID_FIELDS
        self._values[first : first + _GRID_FIELDS] = array(
            "d", (grid.wall_time, *measured, *grid.commanded_a, *grid.limit_a, grid.limit_kw)
        )
        previous = self._sources[at - 1]
        self._sources[at] = previous if previous == grid.source else grid.source
        self._next = (at + 1) % self._size
        self._count = min(self._count + 1, self._size)

    def since(self, cycle: int) -> list[tuple[int, GridSample]]:
        """The samples of the cycles after `cycle`, oldest first."""
        newest: list[tuple[int, GridSample]] = []
        for k in range(1, self._count + 1):
            at = (self._next - k) % self._size
            if self._cycles[at] <= cycle:
                break
            newest.append((self._cycles[at], self._sample(at)))
        newest.reverse()
        return newest

    def _sample(self, at: int) -> GridSample:
        v = self._values[at * _GRID_FIELDS : (at + 1) * _GRID_FIELDS]
        return GridSample(
            wall_time=v[0],
            measured_a=(v[1], v[2], v[3]) if self._measured[at] else None,
            commanded_a=(v[4], v[5], v[6]),
            limit_a=(v[7], v[8], v[9]),
            limit_kw=v[10],
            source=self._sources[at],
        )


def _sharing(record: DecisionRecord, previous: DecisionRecord) -> DecisionRecord:
    """`record` with its notes, inputs and connector columns that equal the previous
    record's replaced by the previous record's objects: a site's notes, inputs and most
    columns repeat from cycle to cycle (a connector's "failsafe not verified: 32 A
    reserved" is made anew each cycle)."""
    if previous.notes == record.notes:
        notes = previous.notes
    else:
        seen = {note: note for note in previous.notes}
        notes = tuple(seen.get(note, note) for note in record.notes)
    connectors = record.connectors
    if isinstance(connectors, ConnectorColumns) and isinstance(
        previous.connectors, ConnectorColumns
    ):
        connectors = _shared_columns(connectors, previous.connectors)
    inputs = _shared(record.inputs, previous.inputs)
    return replace(record, notes=notes, inputs=inputs, connectors=connectors)


def _shared_columns(new: ConnectorColumns, old: ConnectorColumns) -> ConnectorColumns:
    """`new` with each column equal to `old`'s being `old`'s."""
    return ConnectorColumns(
        new.names,
        new.node_ids,
        new.reason_names,
        _shared(new.setpoint_a, old.setpoint_a),
        _shared(new.phases, old.phases),
        _shared(new.reason, old.reason),
        _shared(new.binding_node, old.binding_node),
        _shared(new.binding_phase, old.binding_phase),
    )


def _shared(new: _T, old: object) -> _T:
    """`new`, or `old` where it is equal (in mappings, key by key)."""
    if type(new) is type(old) and new == old:
        return old
    if isinstance(new, dict) and isinstance(old, dict):
        return {key: _shared(value, old.get(key)) for key, value in new.items()}  # type: ignore[return-value]
    return new


def _newest(items: deque[_T], count: int) -> list[_T]:
    newest = list(islice(reversed(items), max(count, 0)))
    newest.reverse()
    return newest
