"""What the chargers draw on their failsafe current, node by node, against the node's limits.

When hubgate stops (or its leases lapse), every charger falls back to the site's
`control.failsafe_current_a`. With many connectors charging, that sum can pass a node's
limit with nobody left to lower it: a site file where it does earns a warning
(`hubgate config check`). A grid-operator limit below the connection lowers the bar further:
the warning says how many connectors fit under it.
"""

from __future__ import annotations

import math

from hubgate.config.model import GRID_NODE_ID, PhaseMode, SiteConfig


def failsafe_load_a(site: SiteConfig) -> dict[str, tuple[float, float, float]]:
    """Per node (the grid connection included), the most its connectors draw per grid phase
    on their failsafe current: a three-phase (or switchable, or DC) connector on each phase,
    a one-phase one on the grid phase its charger's L1 is wired to."""
    parent = {node.id: node.parent for node in site.nodes}
    failsafe = site.control.failsafe_current_a
    load = {node_id: [0.0, 0.0, 0.0] for node_id in (GRID_NODE_ID, *parent)}
    for charger in site.chargers:
        first = charger.phase_rotation.grid_phases()[0]
        for connector in charger.connectors:
            one = connector.phases is PhaseMode.ONE_PHASE
            phases = (first,) if one else (0, 1, 2)
            node: str | None = charger.node
            while node is not None:
                for p in phases:
                    load[node][p] += failsafe
                node = parent.get(node) if node != GRID_NODE_ID else None
    return {node_id: (a[0], a[1], a[2]) for node_id, a in load.items()}


def failsafe_load_warnings(site: SiteConfig) -> list[str]:
    """One line per node whose connectors, all on their failsafe current, draw more than its
    phase limit (or, at the connection, its power limit) allows."""
    voltage = site.grid.voltage_v
    limits: dict[str, float] = {}
    grid = site.grid
    limits[GRID_NODE_ID] = min(grid.phase_current_limit_a)
    if grid.power_limit_kw is not None:
        limits[GRID_NODE_ID] = min(limits[GRID_NODE_ID], grid.power_limit_kw * 1000 / 3 / voltage)
    for node in site.nodes:
        caps = [*(node.phase_current_limit_a or ())]
        if node.power_limit_kw is not None:
            caps.append(node.power_limit_kw * 1000 / 3 / voltage)
        if caps:
            limits[node.id] = min(caps)
    failsafe = site.control.failsafe_current_a
    warnings = []
    for node_id, per_phase in failsafe_load_a(site).items():
        limit = limits.get(node_id)
        worst = max(per_phase)
        if limit is None or worst <= limit:
            continue
        count, fit = round(worst / failsafe), math.floor(limit / failsafe)
        warnings.append(
            f"control.failsafe_current_a: on their failsafe current ({failsafe:g} A) the "
            f"connectors under '{node_id}' draw up to {worst:.0f} A on a phase ({count} of "
            f"them), above its {limit:.0f} A: if hubgate stops while more than {fit} of "
            "them charge, nothing holds its limit (under a grid-operator limit, fewer)"
        )
    return warnings
