"""Every node's base load for a cycle, sans-IO: what its meter (or the meters below it) shows
beyond the connectors' known draws.

`BaseLoads` keeps what it needs between cycles (each trusted meter's last base, and what
of its rise the credits below it explain: `_metered`) and is called once per cycle by
`CyclePlanner.inputs`. The Rust
allocator counts base load at its own node only (`caps.rs`: cap = limit - base[node]), so a
node without a trusted meter carries here what the meters below it show.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from itertools import chain
from operator import sub
from types import MappingProxyType

from hubgate.control.decisions import Phases3
from hubgate.control.site_model import SiteModel

Credit = tuple[float, Phases3]
"""A connector whose draw the meters may show before any reading does (an EV starting
unseen, or on its way down after a decrease): since when (its offer or state change, or
its values when newer: what they show was not its start) and what it may draw above its
known draw per phase, its allowance (A)."""

_Draws = Sequence[Phases3]
"""Per connector, a draw on the grid phases (A)."""
_NO_HEIRS: Mapping[int, Phases3] = MappingProxyType({})

_Layers = list[list[float]]
"""What one credit explains of its meter's rise, in layers `[since, L1, L2, L3]` by the
start (`Credit`) each came under, the newest last."""


class BaseLoads:
    """Per node and phase, the base load the allocator counts (A)."""

    def __init__(self, model: SiteModel, settle_s: float) -> None:
        self.model, self.settle_s = model, settle_s
        nodes = range(len(model.node_ids))
        self._deepest_first = sorted(nodes, key=lambda n: -len(model.ancestors[n]))
        self._children = [[c for c in nodes if model.parents[c] == n] for n in nodes]
        self._own_idle_a = [
            sum(info.idle_a for info in model.connectors if info.node == n) for n in nodes
        ]
        """Per node: the idle draw per phase of the DC connectors right at it."""
        self._held: dict[int, Phases3] = {}
        """Per metered node, its base load in the last cycle its meter was read."""
        self._credited: dict[int, tuple[Phases3, _Draws, _Draws, dict[int, _Layers]]] = {}
        """Per metered node, its meter's reading minus the known draws in the last cycle it
        was read, every connector's known draw then, and what each credit below it
        explained."""
        self._limits: list[Phases3] = []
        """Per node, its limit in force in the last cycle (`cut`)."""
        self._fresh: dict[int, Phases3] = {}
        """Per metered node, its base load in the last cycle if its meter was read in it."""
        self._floors: dict[int, Phases3 | None] = {}
        """Per metered node while draws passed on at a hand-over count below it (`loads`'
        `inherited`): the least base load it may have (None: none known)."""

    def cut(self, limits: list[Phases3]) -> frozenset[int]:
        """The nodes under a limit in force (`limits`, per node) lower than the last cycle's,
        at them or above them: where a start the readings do not show yet is counted only if
        its EV says it draws (a credit may hide a rise of the base load for up to
        `settle_s`, `_metered`, which a cut lays bare)."""
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
        draws: tuple[Sequence[float], _Draws, _Draws],
        credits: Mapping[int, Credit],
        limit_a: Callable[[int], Phases3],
        now: float,
        *,
        inherited: Mapping[int, Phases3] = _NO_HEIRS,
        remember: bool = True,
    ) -> list[Phases3]:
        """Every node's base load, deepest first: a trusted meter's (`measured` by node)
        metered base (`_metered`; `draws`: the known draws summed at each node, three per
        node, and each connector's; `credits`: the connectors whose draw the meters may show
        before any reading does), held while its meter was not read this cycle (`unread`: its
        last reading is older than the draws); else what the meters below it show plus the
        idle draw of DC connectors no meter sees, and, for a meter not trusted (`share`: its
        budget share below 1), at least the rest of its limit in force (`limit_a(node)`)
        beyond its degraded share (that assumption is its own node's: rolled up, two lost
        meters would leave the EVs nothing). While connectors below a metered node count the
        draw a leader before them last read (`inherited`, by connector: after a hand-over,
        not read here yet, `ConnectorRuntime.inheriting`), its base load is at least what it was when they
        began to (`_floor`). Not `remember`: nothing is kept for the next cycle (a look at
        other meters than the budget trusts: `FailsafeShare.starting`)."""
        model = self.model
        seen: list[Phases3] = [(0.0, 0.0, 0.0)] * len(model.node_ids)
        """Per node: what the trusted meters at or below it show as base load, plus the
        idle draw of the DC connectors below it that none of them sees."""
        loads: list[Phases3] = [(0.0, 0.0, 0.0)] * len(model.node_ids)
        known = draws[0]
        credited: dict[int, list[int]] = {}  # per node, the credits below it
        for i in credits:
            for node in model.ancestors[model.connectors[i].node]:
                credited.setdefault(node, []).append(i)
        heirs: dict[int, list[int]] = {}  # per node, the connectors below it that inherit
        for i in inherited:
            for node in model.ancestors[model.connectors[i].node]:
                heirs.setdefault(node, []).append(i)
        for node in self._deepest_first:
            metered = self._held.get(node) if node in unread else None
            if metered is None:
                metered = self._metered(
                    node,
                    measured.get(node),
                    known[3 * node : 3 * node + 3],
                    (draws[1], draws[2], credits, credited.get(node, ())),
                    now,
                    remember=remember,
                )
            if metered is not None:
                if node in heirs or node in self._floors:
                    metered = self._floor(node, metered, heirs.get(node), inherited, remember)
                seen[node] = loads[node] = metered
                if remember:
                    self._held[node] = metered
                    if node in unread:
                        self._fresh.pop(node, None)
                    else:
                        self._fresh[node] = metered
                continue
            if remember:
                self._fresh.pop(node, None)
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

    def _floor(
        self,
        node: int,
        metered: Phases3,
        heirs: Sequence[int] | None,
        inherited: Mapping[int, Phases3],
        remember: bool,
    ) -> Phases3:
        """A metered node's base load while connectors below it (`heirs`) count a draw
        passed on (`inherited`): at least its base load in the cycle before they began to
        less those draws, which the meter showed beyond the other known draws then (only
        if its meter was read in that cycle: else no floor, nothing better to go on). Such
        a draw is what the leader before last read; the meter lacks it once its EV pauses
        or leaves, and until its station's status says so here, the base load read that
        much low: the others were raised at once, 86 A commanded through a 70 A board for
        4 cycles (test_base_transients: the test cluster's hand-back). A base load that
        falls meanwhile is held (conservative, until its station's values come or the old
        lease lapses); one that rose shows. Not caught: an EV that paused between the old
        leader's last reading of it and that cycle (the meter lacked it already). Dropped
        once none counts (`heirs` None)."""
        if heirs is None:
            if remember:
                del self._floors[node]
            return metered
        if node in self._floors:
            floor = self._floors[node]
        else:
            before = self._fresh.get(node)
            floor = None
            if before is not None:
                floor = (
                    before[0] - sum(inherited[i][0] for i in heirs),
                    before[1] - sum(inherited[i][1] for i in heirs),
                    before[2] - sum(inherited[i][2] for i in heirs),
                )
            if remember:
                self._floors[node] = floor
        if floor is None:
            return metered
        return (max(metered[0], floor[0]), max(metered[1], floor[1]), max(metered[2], floor[2]))

    def _metered(
        self,
        node: int,
        measured: Phases3 | None,
        known: Sequence[float],
        credit: tuple[Sequence[Phases3], Sequence[Phases3], Mapping[int, Credit], Sequence[int]],
        now: float,
        *,
        remember: bool,
    ) -> Phases3 | None:
        """A metered node's base load: measured minus the known draws below it, signed (PV
        and a discharging battery below it make it negative: headroom for the EVs), minus
        what the credits below it explain (`credit`: each connector's known draw and its
        reading's, the credits, the connectors below with one). A credit (`Credit`) explains
        only the meter's rise that came while it was in force, at most its allowance, for
        `settle_s` from its start: each cycle the rise beyond the known draws is theirs as
        far as their allowances go, a fall takes back what ended credits explained first,
        then what the others do. What its known draw drops below its reading (a decrease's
        cap) is its own at once; what its reading or its known draw then does, the meter
        did too; what its reading still shows above its known draw stays its own under a
        credit renewed (a later decrease, or values newer than the rise that show it did
        not start); the rest of what a credit explained becomes base load when it ends or
        is renewed (an idle EV's values read after a 10 A rise of the base said 0 A, and it
        stayed hidden for `settle_s`, 40 A commanded against 30 A). A rise that came before a credit is never put down to it, so
        credits that follow one another cannot hold the base below the meter for longer
        than one lasts (before, the base was held where it was when the first began, for as
        long as new ones came: 10 A for 48 s in a test). None for a node without a trusted
        meter (what it kept is dropped)."""
        if measured is None:
            if remember:
                self._credited.pop(node, None)
            return None
        raw = (measured[0] - known[0], measured[1] - known[1], measured[2] - known[2])
        draws, read, credits, below = credit
        then = self._credited.get(node)
        explained: dict[int, _Layers] = {i: [] for i in below}
        if then is not None:
            raw_then, draws_then, read_then, explained_then = then
            fresh = [raw[p] - raw_then[p] for p in range(3)]
            ended: list[_Layers] = []  # what ended credits explained, for a fall first
            for i in sorted(explained_then.keys() | explained.keys()):
                layers = [layer.copy() for layer in explained_then.get(i, ())]
                shift = [draws[i][p] - draws_then[i][p] for p in range(3)]
                unseen = [
                    read[i][p] - draws[i][p] - read_then[i][p] + draws_then[i][p] for p in range(3)
                ]
                for p in range(3):
                    if shift[p] > 0:  # its values show what was put down to it
                        fresh[p] += _take(layers, p, shift[p])
                    elif unseen[p] < 0:  # its reading fell above what it counts: the meter did
                        fresh[p] += _take(layers, p, -unseen[p])
                if i not in credits:  # what it explained is base load from now on
                    ended.append(layers)
                    continue
                since = credits[i][0]
                kept: _Layers = []
                old: _Layers = []
                for layer in layers:  # a layer lives settle_s, and not from before the credit
                    live = now - layer[0] < self.settle_s and layer[0] >= since
                    (kept if live else old).append(layer)
                layers = kept
                for p in range(3):
                    # what its reading still shows above what it counts stays its own
                    shown = read[i][p] - draws[i][p] - sum(layer[p + 1] for layer in layers)
                    _give(layers, p, _take(old, p, shown), credits[i])
                    _take(layers, p, sum(layer[p + 1] for layer in layers) - credits[i][1][p])
                    if unseen[p] > 0:  # the meter shows what its values no longer count
                        fresh[p] -= _give(layers, p, unseen[p], credits[i])
                ended.append(old)
                explained[i] = layers
            for p in range(3):
                for layers in chain(ended, explained.values()):
                    if fresh[p] < 0:
                        fresh[p] += _take(layers, p, -fresh[p])
                for i, layers in explained.items():
                    if fresh[p] > 0:
                        fresh[p] -= _give(layers, p, fresh[p], credits[i])
        base = list(raw)
        for layers in explained.values():
            for layer in layers:
                for p in range(3):
                    base[p] -= layer[p + 1]
        if remember:
            self._credited[node] = (raw, draws, read, explained)
        return (base[0], base[1], base[2])


def _give(layers: _Layers, phase: int, amount: float, credit: Credit) -> float:
    """Put up to `amount` on `phase` down to `credit`, as far as its allowance goes (in the
    layer of its start); what was put."""
    since, allowance = credit
    part = min(amount, allowance[phase] - sum(layer[phase + 1] for layer in layers))
    if part <= 0:
        return 0.0
    if not layers or layers[-1][0] != since:
        layers.append([since, 0.0, 0.0, 0.0])
    layers[-1][phase + 1] += part
    return part


def _take(layers: _Layers, phase: int, amount: float) -> float:
    """Take up to `amount` off `phase` of what `layers` explain, the newest first; what was
    taken."""
    taken = 0.0
    for layer in reversed(layers):
        if taken >= amount:
            break
        part = min(layer[phase + 1], amount - taken)
        layer[phase + 1] -= part
        taken += part
    return taken
