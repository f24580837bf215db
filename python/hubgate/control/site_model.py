"""The site's tree as the control loop needs it each cycle: flat arrays by index.

Built once from the `SiteConfig` in the allocator's node and connector order:
every node's ancestors (itself included), its finite caps, and per connector
its node, the grid phases it draws on and its limits. Nodes without a
configured phase or power limit get a very large finite one, so that any
limit from the limit book can be applied as a reduction of the node's headroom.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from hubgate._core import ConnectorPaths
from hubgate.config.model import GRID_NODE_ID, PhaseMode, SiteConfig
from hubgate.control.allocation import ConnectorKey, SiteAllocator
from hubgate.control.decisions import Phases3
from hubgate.control.limits import SITE

UNLIMITED_A = 100_000.0
"""Stands for "no phase limit" (the largest current a site file accepts)."""

UNLIMITED_KW = 1_000_000.0
"""Stands for "no power limit"."""


@dataclass(frozen=True)
class ConnectorInfo:
    """One connector's place in the tree and its electrical limits."""

    key: ConnectorKey
    name: str
    """`charger-id#n`, the limit-book and API key."""
    node: int
    grid_phases: tuple[int, int, int]
    """Grid phase (0-2) of the charger's L1, L2, L3 terminals."""
    one_phase: bool
    max_current_a: float
    protocol: str
    min_current_a: float = 0.0
    idle_a: float = 0.0
    """What it draws per phase when idle (a DC cabinet's pre-heat and idle consumption)."""
    hold_minimum: bool = False
    """Offered its minimum while idle (a DC charger given 0 W starts no session)."""
    switchable: bool = False
    """Switched between one and three phases by the allocator."""

    @property
    def three_phase(self) -> bool:
        """Built on three phases, not switchable: its EV may still draw on one of them."""
        return not self.one_phase and not self.switchable


@dataclass(frozen=True)
class SiteModel:
    """Node and connector facts by allocator index."""

    node_ids: tuple[str, ...]
    node_kinds: tuple[str, ...]
    parents: tuple[int | None, ...]
    ancestors: tuple[tuple[int, ...], ...]
    """Per node: itself and every node above it."""
    caps_a: tuple[Phases3, ...]
    power_kw: tuple[float, ...]
    connectors: tuple[ConnectorInfo, ...]
    voltage_v: float
    idle_a: tuple[float, ...] = ()
    """Per node: the idle draw per phase of every connector below it."""

    @cached_property
    def paths(self) -> ConnectorPaths:
        """Each connector's path up the tree (its node's ancestors) and the grid phases it
        draws on (its L1's first: a one-phase setpoint's), for the per-node sums in the Rust
        core."""
        return ConnectorPaths(
            len(self.node_ids),
            [self.ancestors[info.node] for info in self.connectors],
            [
                info.grid_phases[:1] if info.one_phase else info.grid_phases
                for info in self.connectors
            ],
        )

    def limit_target(self, node: int) -> str:
        """The limit book's target for a node: `SITE` for the root, else the node's id."""
        return SITE if node == 0 else self.node_ids[node]

    @classmethod
    def build(cls, site: SiteConfig, allocator: SiteAllocator) -> SiteModel:
        """The model of `site` in `allocator`'s order."""
        grid = site.grid
        kinds = {GRID_NODE_ID: "grid"} | {n.id: n.kind.value for n in site.nodes}
        parent_ids: dict[str, str | None] = {GRID_NODE_ID: None} | {
            n.id: n.parent for n in site.nodes
        }
        caps: dict[str, Phases3] = {GRID_NODE_ID: grid.usable_phase_a}
        power = {GRID_NODE_ID: grid.power_limit_kw or UNLIMITED_KW}
        for node in site.nodes:
            caps[node.id] = node.phase_current_limit_a or (UNLIMITED_A,) * 3
            power[node.id] = node.power_limit_kw or UNLIMITED_KW
        index = {node_id: i for i, node_id in enumerate(allocator.node_ids)}
        parents = tuple(
            None if (p := parent_ids[n]) is None else index[p] for n in allocator.node_ids
        )
        ancestors = []
        for i in range(len(allocator.node_ids)):
            chain = [i]
            while (up := parents[chain[-1]]) is not None:
                chain.append(up)
            ancestors.append(tuple(chain))
        chargers = {c.id: c for c in site.chargers}
        connectors = []
        for charger_id, connector_id in allocator.connector_keys:
            charger = chargers[charger_id]
            connector = next(c for c in charger.connectors if c.id == connector_id)
            connectors.append(
                ConnectorInfo(
                    key=(charger_id, connector_id),
                    name=f"{charger_id}#{connector_id}",
                    node=index[charger.node],
                    grid_phases=charger.phase_rotation.grid_phases(),
                    one_phase=connector.phases is PhaseMode.ONE_PHASE,
                    max_current_a=connector.max_current_a,
                    protocol="ocpp" if charger.ocpp is not None else "modbus",
                    min_current_a=connector.min_current_a,
                    idle_a=0.0
                    if connector.dc is None
                    else connector.dc.idle_current_a(grid.voltage_v),
                    hold_minimum=connector.dc is not None and connector.dc.hold_minimum,
                    switchable=connector.phases is PhaseMode.SWITCHABLE,
                )
            )
        idle = [0.0] * len(allocator.node_ids)
        for info in connectors:
            for above in ancestors[info.node]:
                idle[above] += info.idle_a
        return cls(
            node_ids=allocator.node_ids,
            node_kinds=tuple(kinds[n] for n in allocator.node_ids),
            parents=parents,
            ancestors=tuple(ancestors),
            caps_a=tuple(caps[n] for n in allocator.node_ids),
            power_kw=tuple(power[n] for n in allocator.node_ids),
            connectors=tuple(connectors),
            voltage_v=grid.voltage_v,
            idle_a=tuple(idle),
        )


def with_finite_limits(site: SiteConfig) -> SiteConfig:
    """`site` with every missing node phase or power limit replaced by a very large one."""
    nodes = tuple(
        node.model_copy(
            update={
                "phase_current_limit_a": node.phase_current_limit_a or (UNLIMITED_A,) * 3,
                "power_limit_kw": node.power_limit_kw or UNLIMITED_KW,
            }
        )
        for node in site.nodes
    )
    grid = site.grid.model_copy(update={"power_limit_kw": site.grid.power_limit_kw or UNLIMITED_KW})
    return site.model_copy(update={"nodes": nodes, "grid": grid})
