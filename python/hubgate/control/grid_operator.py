"""The grid operator's limit as read from a control box or relay contacts.

A box reports a percentage (`grid_limit_percent`) or a power (`grid_limit_power`,
W); relay contacts report the §14a dimming contact (`relay_dim_14a`, closed =
dimmed to the §14a minimum). Every change becomes a `GRID_OPERATOR` lease on
the site in the limit book, so it is audited like any other limit; while the
box is silent the configured fallback percentage is in force (its lease's origin says so:
the source-lost event).
"""

from __future__ import annotations

from dataclasses import dataclass

from hubgate.config.model import SiteConfig
from hubgate.control.limits import SITE, Limit, LimitBook, LimitSource, grid_operator_limit_kw
from hubgate.devices.model import Reading
from hubgate.profiles.model import Quantity


def connection_kw(site: SiteConfig) -> float:
    """The connection's power: its power limit, else its weakest phase at nominal voltage."""
    grid = site.grid
    if grid.power_limit_kw is not None:
        return grid.power_limit_kw
    return 3 * grid.voltage_v * min(grid.phase_current_limit_a) / 1000


def limit_kw_of(reading: Reading, connection: float) -> float | None:
    """The limit a box or relay reading stands for (kW), None when it holds none."""
    percent = reading.get(Quantity.GRID_LIMIT_PERCENT)
    if percent is not None:
        return grid_operator_limit_kw(min(max(percent, 0.0), 100.0), connection)
    power_w = reading.get(Quantity.GRID_LIMIT_POWER)
    if power_w is not None:
        return min(max(power_w / 1000, 0.0), connection)
    dimmed = reading.get(Quantity.RELAY_DIM_14A)
    if dimmed is not None:
        return 0.0 if dimmed else connection
    return None


@dataclass
class GridOperatorInput:
    """Turns box readings into audited `GRID_OPERATOR` leases on the site."""

    connection_kw: float
    fallback_percent: float
    silent_after_s: float
    origin: str
    last_ok_at: float | None = None
    in_force_kw: float | None = None

    def update(self, book: LimitBook, reading: Reading | None, now: float) -> None:
        """Take this cycle's reading (None when the box did not answer)."""
        wanted: float | None = None
        if reading is not None:
            wanted = limit_kw_of(reading, self.connection_kw)
            if wanted is not None:
                self.last_ok_at = now
        origin = self.origin
        if wanted is None:
            if self.last_ok_at is not None and now - self.last_ok_at <= self.silent_after_s:
                return
            wanted = grid_operator_limit_kw(self.fallback_percent, self.connection_kw)
            origin = (
                f"fallback {self.fallback_percent:g} %: {self.origin} silent for more than "
                f"{self.silent_after_s:g} s"
            )
        if wanted == self.in_force_kw:
            return
        self.in_force_kw = wanted
        book.set(
            SITE,
            LimitSource.GRID_OPERATOR,
            Limit(power_kw=wanted),
            now=now,
            lease_s=None,
            origin=origin,
        )
