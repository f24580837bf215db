"""Every node's base load for a cycle, sans-IO: what its meter (or the meters below it) shows
beyond the connectors' known draws.

`BaseLoads` keeps what it needs between cycles (the base a trusted meter showed when every
draw below it was known) and is called once per cycle by `CyclePlanner.inputs`. The Rust
allocator counts base load at its own node only (`caps.rs`: cap = limit - base[node]), so a
node without a trusted meter carries here what the meters below it show.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from operator import sub

from hubgate.control.decisions import Phases3
from hubgate.control.site_model import SiteModel


class BaseLoads:
    """Per node and phase, the base load the allocator counts (A)."""

    def __init__(self, model: SiteModel) -> None:
        self.model = model
        nodes = range(len(model.node_ids))
        self._deepest_first = sorted(nodes, key=lambda n: -len(model.ancestors[n]))
        self._children = [[c for c in nodes if model.parents[c] == n] for n in nodes]
        self._own_idle_a = [
            sum(info.idle_a for info in model.connectors if info.node == n) for n in nodes
        ]
        """Per node: the idle draw per phase of the DC connectors right at it."""
        self._held: dict[int, Phases3] = {}
        """Per metered node, its base load in the last cycle in which every connector's
        draw below it was known (`_metered`)."""
        self._limits: list[Phases3] = []
        """Per node, its limit in force in the last cycle (`cut`)."""

    def cut(self, limits: list[Phases3]) -> frozenset[int]:
        """The nodes under a limit in force (`limits`, per node) lower than the last cycle's,
        at them or above them: where a start the readings do not show yet is counted only if
        its EV says it draws (the held base may hide a rise that was base load all along,
        which a cut lays bare)."""
        before, self._limits = self._limits, limits
        fell = {
            n
            for n, (a, b) in enumerate(zip(limits, before, strict=False))
            if min(map(sub, a, b)) < 0
        }
        if not fell:
            return frozenset()
        return frozenset(n for n, path in enumerate(self.model.ancestors) if fell & set(path))

    def loads(
        self,
        measured: Mapping[int, Phases3],
        share: Mapping[int, float],
        unread: Collection[int],
        draws: tuple[Sequence[float], Sequence[float]],
        limit_a: Callable[[int], Phases3],
        *,
        remember: bool = True,
    ) -> list[Phases3]:
        """Every node's base load, deepest first: a trusted meter's (`measured` by node)
        metered base (`_metered`; `draws`: the known and unknown draws below each node, three
        per node), held while its meter was not read this cycle (`unread`: its last reading
        is older than the draws); else what the meters below it show plus the idle draw of
        DC connectors no meter sees, and, for a meter not trusted (`share`: its budget share
        below 1), at least the rest of its limit in force (`limit_a(node)`) beyond its
        degraded share (that assumption is its own node's: rolled up, two lost meters would
        leave the EVs nothing). Not `remember`: nothing is kept for the next cycle (a look at
        other meters than the budget trusts: `FailsafeShare.starting`)."""
        model = self.model
        seen: list[Phases3] = [(0.0, 0.0, 0.0)] * len(model.node_ids)
        """Per node: what the trusted meters at or below it show as base load, plus the
        idle draw of the DC connectors below it that none of them sees."""
        loads: list[Phases3] = [(0.0, 0.0, 0.0)] * len(model.node_ids)
        known, unknown = draws
        for node in self._deepest_first:
            metered = self._held.get(node) if node in unread else None
            if metered is None:
                at = slice(3 * node, 3 * node + 3)
                metered = self._metered(
                    node, measured.get(node), known[at], unknown[at], remember=remember
                )
            if metered is not None:
                seen[node] = loads[node] = metered
                continue
            below = [self._own_idle_a[node]] * 3
            for child in self._children[node]:
                for p in range(3):
                    below[p] += seen[child][p]
            seen[node] = (below[0], below[1], below[2])
            if node in share:  # a meter not trusted (or without phase currents)
                limit = limit_a(node)
                rest = 1 - share[node]
                below = [max(below[p], limit[p] * rest + model.idle_a[node]) for p in range(3)]
            loads[node] = (below[0], below[1], below[2])
        return loads

    def _metered(
        self,
        node: int,
        measured: Phases3 | None,
        known: Sequence[float],
        unknown: Sequence[float],
        *,
        remember: bool,
    ) -> Phases3 | None:
        """A metered node's base load: measured minus the known draws below it, signed (PV
        and a discharging battery below it make it negative: headroom for the EVs). While
        the meter may show draws below it that no reading does yet (`unknown`: a start not
        yet reported, up to what it may draw; an EV on its way down after a decrease, what
        its last reading shows above its new setpoint), the base is held where it was
        before, unless the meter rose more than those explain: an EV slow to follow is
        neither base load nor a reason to pause the others. None for a node without a
        trusted meter."""
        if measured is None:
            return None
        raw = (measured[0] - known[0], measured[1] - known[1], measured[2] - known[2])
        held = self._held.get(node)
        if held is None or not any(unknown):
            if remember:
                self._held[node] = raw
            return raw
        return (
            max(held[0], raw[0] - unknown[0]),
            max(held[1], raw[1] - unknown[1]),
            max(held[2], raw[2] - unknown[2]),
        )
