"""The site's electrical tree as flat arrays, and the true current of every node.

Nodes are numbered with the grid connection at 0. Currents are kept flat,
`3 * node + phase`, phases 0-2 being the grid's L1-L3. A node carries its own
loads (connectors hung from it, base load, PV and battery at it) plus everything
below it; a positive current is drawn from the grid, a negative one fed back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hubgate.config.model import GRID_NODE_ID, PhaseMode, SiteConfig

PhaseLimit = tuple[float, float, float] | None


@dataclass(frozen=True)
class ConnectorWiring:
    """Where a connector is and which grid phases it can draw on."""

    charger: str
    connector: int
    node: int
    mode: PhaseMode
    grid_phases: tuple[int, int, int]
    """Grid phase of the charger's L1, L2 and L3 (its phase rotation)."""
    min_current_a: float
    max_current_a: float

    def phases_for(self, ev_phases: int) -> tuple[int, ...]:
        """Grid phases an EV with `ev_phases` (1 or 3) draws on at this connector."""
        if self.mode == PhaseMode.ONE_PHASE or ev_phases == 1:
            return self.grid_phases[:1]
        return self.grid_phases


@dataclass(frozen=True)
class SiteTree:
    """Nodes, their parents and limits, and every connector, from a site file."""

    node_ids: tuple[str, ...]
    parents: tuple[int, ...]
    """Parent index per node; -1 for the grid connection."""
    bottom_up: tuple[int, ...]
    """Every node but the root, each before its parent."""
    phase_limits: tuple[PhaseLimit, ...]
    """The configured per-phase limit of each node (None: no own limit)."""
    connectors: tuple[ConnectorWiring, ...]
    voltage_v: float
    power_limits_w: tuple[float, ...] = ()
    """The configured power limit of each node (W; inf: none)."""

    @classmethod
    def from_config(cls, site: SiteConfig) -> SiteTree:
        """The tree of a validated site."""
        node_ids = (GRID_NODE_ID, *(n.id for n in site.nodes))
        index = {node_id: i for i, node_id in enumerate(node_ids)}
        parents = (-1, *(index[n.parent] for n in site.nodes))
        depth = [0] * len(node_ids)
        for i in range(1, len(node_ids)):
            j = i
            while parents[j] != -1:
                depth[i] += 1
                j = parents[j]
        bottom_up = tuple(sorted(range(1, len(node_ids)), key=lambda i: -depth[i]))
        limits: list[PhaseLimit] = [site.grid.phase_current_limit_a]
        limits.extend(n.phase_current_limit_a for n in site.nodes)
        connectors = tuple(
            ConnectorWiring(
                charger=charger.id,
                connector=connector.id,
                node=index[charger.node],
                mode=connector.phases,
                grid_phases=charger.phase_rotation.grid_phases(),
                min_current_a=connector.min_current_a,
                max_current_a=connector.max_current_a,
            )
            for charger in site.chargers
            for connector in charger.connectors
        )
        powers = (site.grid.power_limit_kw, *(n.power_limit_kw for n in site.nodes))
        return cls(
            node_ids,
            parents,
            bottom_up,
            tuple(limits),
            connectors,
            site.grid.voltage_v,
            tuple(math.inf if kw is None else kw * 1000.0 for kw in powers),
        )

    def node_index(self, node_id: str) -> int:
        """Index of a node id (or 'grid')."""
        return self.node_ids.index(node_id)

    def ancestors(self, node: int) -> tuple[int, ...]:
        """The node itself and every node above it, up to the grid connection."""
        path = [node]
        while self.parents[path[-1]] != -1:
            path.append(self.parents[path[-1]])
        return tuple(path)

    def accumulate(self, own: list[float]) -> list[float]:
        """Node currents (flat) from each node's own loads (flat): children add up."""
        total = list(own)
        parents = self.parents
        for node in self.bottom_up:
            up = 3 * parents[node]
            at = 3 * node
            total[up] += total[at]
            total[up + 1] += total[at + 1]
            total[up + 2] += total[at + 2]
        return total

    def amps_per_phase(self, kw: float) -> float:
        """Current per phase of a balanced three-phase power."""
        return kw * 1000.0 / (3.0 * self.voltage_v)
