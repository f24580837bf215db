"""Which idle DC connectors keep their minimum hold (`hold_minimum`) while a limit binds
(sans-IO).

An idle DC connector held at its minimum counts in full against every limit above it (a
hold is a commanded setpoint), although no EV draws it. While a limit binds on a node (an
EV under it was held below what it wants), the idle holds under that node yield to the
EVs: one of them keeps its minimum, in turns of `hold_rotate_s`, so that an EV arriving at
any of the node's n idle DC connectors (its station shows Unavailable until offered its
minimum) starts within (n - 1) x `hold_rotate_s`. A node counts as binding for
`hold_rotate_s` after it last held an EV back: the holds do not come back for a cycle
between two trims. Where no limit binds every idle DC connector is held.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from hubgate.control.allocation import REASON_NAMES, CycleResult

LIMIT_REASONS = frozenset(
    REASON_NAMES.index(name)
    for name in (
        "PHASE_CURRENT",
        "POWER",
        "UNBALANCE",
        "GRID_OPERATOR",
        "PEAK_TARGET",
        "PV_BUDGET",
        "PAUSED_NO_CAPACITY",
        "AWAITING_HEADROOM",
    )
)
"""Reasons that say an EV got less than it wants because of a node's limit."""


@dataclass
class HoldRotation:
    """Per binding node, the one idle hold under it that keeps its minimum, and since when."""

    ancestors: Sequence[Sequence[int]]
    """Per connector: its node and every node above it."""
    rotate_s: float
    bound_at: dict[int, float] = field(default_factory=dict)
    """When each node last held an EV below what it wants."""
    turns: dict[int, tuple[int, float]] = field(default_factory=dict)
    """Per outermost binding node: the connector keeping its hold, and since when."""

    def yielding(
        self, now: float, idle: Sequence[int], evs: Sequence[int], last: CycleResult | None
    ) -> list[int]:
        """The idle holds (connector indices `idle`) that yield this cycle, given the
        connectors whose EVs want current (`evs`) and the last cycle's result."""
        if last is not None:
            reason, node = last.reason, last.binding_node
            for i in evs:
                if reason[i] in LIMIT_REASONS:
                    self.bound_at[max(node[i], 0)] = now
        binding = {n for n, at in self.bound_at.items() if now - at < self.rotate_s}
        if not idle or not binding:
            self.turns.clear()
            return []
        under: dict[int, list[int]] = {}
        for i in idle:  # the outermost binding node above it, if any
            outer = [n for n in self.ancestors[i] if n in binding]
            if outer:
                under.setdefault(outer[-1], []).append(i)
        yielding: list[int] = []
        for top, candidates in under.items():
            kept = self._turn(top, sorted(candidates), now)
            yielding += (i for i in candidates if i != kept)
        for top in self.turns.keys() - under.keys():
            del self.turns[top]
        return yielding

    def _turn(self, top: int, candidates: list[int], now: float) -> int:
        """Whose turn it is under `top`: the one keeping its hold until `rotate_s` is over,
        then (or when it stopped being idle) the next idle one after it."""
        kept, since = self.turns.get(top, (-1, now))
        if kept in candidates and now - since < self.rotate_s:
            return kept
        after = [i for i in candidates if i > kept]
        kept = after[0] if after else candidates[0]
        self.turns[top] = (kept, now)
        return kept
