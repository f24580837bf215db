"""The failsafe current each connector is configured with, so that what the chargers fall
back to without hubgate fits every node's limit in force (sans-IO).

When hubgate stops, or its leases lapse, each charger draws its device-side failsafe
current, and nobody is left to lower it. So the failsafes are shared out like a budget:
per node and phase, its limit in force (its cap, the limit book's leases, the grid
operator's curtailment) less the load there that is not EVs; each connector in turn gets
the site's `failsafe_current_a` where every node on its path still has room for it on its
phases, else 0 (an EV pauses on it). Connectors whose failsafe hubgate cannot set (a
device with a fixed fallback) take theirs first; then connectors with a session, then the
ones that hold it already (no churn: a new one needs 1 A more room), then by index.

The sharing is the Rust core's (`hubgate._core.FailsafeSeats`, `hubgate_core::failsafe`):
the seats are fixed with the site, each cycle hands in two flag columns and the room.
"""

from __future__ import annotations

from hubgate._core import FailsafeSeats
from hubgate.control.site_model import SiteModel


def failsafe_seats(model: SiteModel, fixed: list[bool]) -> FailsafeSeats:
    """The site's connectors as the budget sees them: each one's path up the tree (its
    own node first), the grid phases it draws on, and whether its failsafe is `fixed` on
    the device."""
    return FailsafeSeats(
        len(model.node_ids),
        [model.ancestors[info.node] for info in model.connectors],
        [(info.grid_phases[0],) if info.one_phase else (0, 1, 2) for info in model.connectors],
        fixed,
    )
