"""The site file's deadline tables: sessions' default needs (a depot's shift plan) and
`[deadlines]`, what the plan does when the site cannot finish every session by its
departure (`hubgate.control.shortfall`)."""

from __future__ import annotations

from datetime import time
from enum import StrEnum

from pydantic import Field

from hubgate.config.base import Strict


class SessionDefault(Strict):
    """What every session on a charger needs unless told otherwise (a depot's shift plan)."""

    energy_kwh: float = Field(gt=0, le=10_000, description="Energy to add per session")
    departure: time = Field(
        description="Leaves at this local time of day (the site's timezone), 'HH:MM'"
    )
    floor_kwh: float | None = Field(
        default=None,
        ge=0,
        le=10_000,
        description="Energy every such session gets before others finish when the site is "
        "short (instead of [deadlines] floor_percent of its need)",
    )


class TokenSessionDefault(SessionDefault):
    """The need of every session started with one id token (a vehicle's card or tag)."""

    id_token: str = Field(min_length=1, max_length=36)


class Shortfall(StrEnum):
    """Who goes short when the energy cannot finish every session by its departure."""

    MOST_FINISHED = "most-finished"
    """Every session gets its floor first, then as many sessions as fit finish (earliest
    departure first, the largest needs give way); the others get the floor and what is
    left."""
    EVEN = "even"
    """What is missing is spread over the sessions (each as short as the others, in
    charging time at its maximum)."""


class Deadlines(Strict):
    """`[deadlines]`: the plan of sessions with an energy need and a departure."""

    shortfall: Shortfall = Field(
        default=Shortfall.MOST_FINISHED,
        description="When the site cannot finish every session by its departure: "
        "'most-finished' (as many vehicles ready as fit, every one at least its floor) or "
        "'even' (what is missing spread over all)",
    )
    floor_percent: float = Field(
        default=50.0,
        ge=0,
        le=100,
        description="With 'most-finished': the share of its need every session gets before "
        "others finish (a session default's floor_kwh replaces it)",
    )
