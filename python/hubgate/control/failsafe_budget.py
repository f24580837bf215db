"""The failsafe current each connector is configured with, so that what the chargers fall
back to without hubgate fits every node's limit in force (sans-IO).

When hubgate stops, or its leases lapse, each charger draws its device-side failsafe
current, and nobody is left to lower it. So the failsafes are shared out like a budget:
per node and phase, its limit in force (its cap, the limit book's leases, the grid
operator's curtailment) less the load there that is not EVs; each connector in turn gets
the site's `failsafe_current_a` where every node on its path still has room for it on its
phases, else 0 (an EV pauses on it). Connectors whose device falls back to a current of
its own whatever it is told (a fallback fixed on the device, or one its profile gives no
value to pause with: `FixedFailsafe`) count that first; then connectors with a session,
then the ones that hold it already (no churn: a new one needs `GRANT_HYSTERESIS_A` more
room), then by index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

GRANT_HYSTERESIS_A = 1.0
"""A connector not holding the failsafe current gets it only with this much more room than
it takes, so that a base load wavering at the edge does not reconfigure it every cycle."""


@dataclass(frozen=True)
class FailsafeSeat:
    """One connector as the budget sees it."""

    path: Sequence[int]
    """The nodes it is fed through, its own first, the connection last."""
    phases: Sequence[int]
    """The grid phases it draws on."""
    fixed_a: float | None = None
    """What its device falls back to whatever it is told (None: what it is told): counted
    first, room or not."""
    session: bool = False
    """An EV is plugged in: served before the idle ones."""
    holds: bool = False
    """It is configured with the failsafe current now."""


def failsafe_budget(
    seats: Sequence[FailsafeSeat], room_a: Sequence[list[float]], failsafe_a: float
) -> list[float]:
    """Per connector, the failsafe current it is to be configured with: its fixed one, else
    `failsafe_a` or 0, sharing `room_a` (per node, A per phase; used up in place)."""
    granted = [0.0] * len(seats)
    order = sorted(
        range(len(seats)),
        key=lambda i: (seats[i].fixed_a is None, not seats[i].session, not seats[i].holds, i),
    )
    for i in order:
        seat = seats[i]
        need = failsafe_a if seat.holds else failsafe_a + GRANT_HYSTERESIS_A
        fits = all(room_a[node][p] >= need - 1e-9 for node in seat.path for p in seat.phases)
        take = seat.fixed_a if seat.fixed_a is not None else failsafe_a if fits else 0.0
        granted[i] = take
        for node in seat.path:
            for p in seat.phases:
                room_a[node][p] -= take
    return granted
