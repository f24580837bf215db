"""What the chargers draw on their failsafe currents, node by node, against the node's limits.

When hubgate stops (or its leases lapse), every charger falls back to its failsafe current,
with nobody left to lower it. hubgate shares `control.failsafe_current_a` out under every
node's limit like a budget (`ConnectorPaths.share_failsafe`): a connector it does not fit
falls back to 0 A, its EV pauses. A charger whose device falls back to a current of its
own whatever it is told (its firmware profile's `Failsafe.fixed_current_a`: a fallback
register without a value that pauses) counts that, room or not; one its device holds in a
register hubgate reads (Alfen's safe current, set in ACE) counts the value
read (`--read-fallbacks`), else the most it may be (`profiles.held`). So
`hubgate config check` warns where those fixed fallbacks alone pass a node's limit (nothing
holds it), and where the others' failsafe current does not fit beside them (how many keep
it; the rest pause when hubgate stops). A grid-operator limit below the connection lowers
the bar further.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from hubgate.config.model import GRID_NODE_ID, PhaseMode, SiteConfig
from hubgate.profiles.held import held_maximum_a
from hubgate.profiles.loader import load_named


@dataclass
class FailsafeLoad:
    """What one node's connectors draw per grid phase when hubgate stops while they charge."""

    fixed_a: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    """Those whose device falls back to a current of its own, at it."""
    shared: list[int] = field(default_factory=lambda: [0, 0, 0])
    """How many others draw on the phase: each `failsafe_current_a` where it fits, else 0."""
    fixed_by: set[str] = field(default_factory=set)
    """The profiles of the fixed ones."""
    unread: set[str] = field(default_factory=set)
    """The connectors among them whose device holds its fallback, counted at its maximum."""

    def total_a(self, failsafe_a: float) -> list[float]:
        """Per phase, with every other connector on `failsafe_a`."""
        return [fixed + n * failsafe_a for fixed, n in zip(self.fixed_a, self.shared, strict=True)]


def failsafe_load(
    site: SiteConfig, folder: Path | None = None, held: Mapping[str, float] | None = None
) -> dict[str, FailsafeLoad]:
    """Per node (the grid connection included), what its connectors draw on their failsafe
    currents: a three-phase (or switchable, or DC) connector on each phase, a one-phase one
    on the grid phase its charger's L1 is wired to; a Modbus charger's fixed fallback from
    its profile (in `folder`; None: the packaged ones); one its device holds as `held` read
    it (by connector, `charger#connector`), else at the most its setpoint and the connector
    allow."""
    parent = {node.id: node.parent for node in site.nodes}
    failsafe = site.control.failsafe_current_a
    load = {node_id: FailsafeLoad() for node_id in (GRID_NODE_ID, *parent)}
    for charger in site.chargers:
        fixed, profile, maximum = None, None, None
        if charger.modbus is not None:
            profile = charger.modbus.profile
            loaded = load_named(profile, folder)
            fixed = loaded.failsafe.fixed_current_a(failsafe)
            maximum = held_maximum_a(loaded)
        first = charger.phase_rotation.grid_phases()[0]
        for connector in charger.connectors:
            name = f"{charger.id}#{connector.id}"
            if maximum is not None:
                read = (held or {}).get(name)
                fixed = min(maximum if read is None else read, connector.max_current_a)
            one = connector.phases is PhaseMode.ONE_PHASE
            phases = (first,) if one else (0, 1, 2)
            node: str | None = charger.node
            while node is not None:
                at = load[node]
                for p in phases:
                    if fixed is None:
                        at.shared[p] += 1
                    else:
                        at.fixed_a[p] += fixed
                if fixed is not None and profile is not None:
                    at.fixed_by.add(profile)
                if maximum is not None and name not in (held or {}):
                    at.unread.add(name)
                node = parent.get(node) if node != GRID_NODE_ID else None
    return load


def failsafe_load_warnings(
    site: SiteConfig, folder: Path | None = None, held: Mapping[str, float] | None = None
) -> list[str]:
    """One line per node whose fixed fallbacks pass its phase limit (or, at the connection,
    its power limit), or beside which not every other connector keeps its failsafe current
    (`held`: the fallbacks read from the devices, `failsafe_load`)."""
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
    for node_id, load in failsafe_load(site, folder, held).items():
        limit = limits.get(node_id)
        if limit is None:
            continue
        unread = (
            f" (the fallback {len(load.unread)} of these connectors hold on their device is "
            "counted at the most it may be, not read: `hubgate config check "
            "--read-fallbacks` reads it)"
            if load.unread
            else ""
        )
        if (fixed := max(load.fixed_a)) > limit:
            warnings.append(
                f"control.failsafe_current_a: the connectors under '{node_id}' whose device "
                f"falls back to a current of its own ({', '.join(sorted(load.fixed_by))}) draw "
                f"up to {fixed:.0f} A on a phase on it, above its {limit:.0f} A: if hubgate "
                "stops while they charge, nothing holds its limit (set a lower fallback on "
                "the devices, or a profile whose fallback hubgate can set)" + unread
            )
            continue
        total = load.total_a(failsafe)
        worst = max(range(3), key=total.__getitem__)
        if total[worst] <= limit:
            continue
        fit = math.floor((limit - load.fixed_a[worst]) / failsafe)
        warnings.append(
            f"control.failsafe_current_a: on their failsafe current ({failsafe:g} A) the "
            f"connectors under '{node_id}' draw up to {total[worst]:.0f} A on a phase "
            f"({load.shared[worst]} whose failsafe hubgate sets), above its {limit:.0f} A: "
            f"at most {fit} of them keep it, the others fall back to 0 A (they pause if "
            "hubgate stops while they charge; under a grid-operator limit, fewer keep it)" + unread
        )
    return warnings
