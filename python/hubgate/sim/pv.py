"""A PV inverter: a clear-sky irradiance curve, dimmed by passing clouds."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

CLOUD_EDGE_S = 30.0
"""A cloud's shade builds up and clears over at most this long."""


@dataclass(frozen=True)
class Cloud:
    """Shade of `depth` (0-1) from `start` to `end` (simulated seconds)."""

    start: float
    end: float
    depth: float

    def shade(self, now: float) -> float:
        """The share of irradiance lost at `now`, with soft edges."""
        if now <= self.start or now >= self.end:
            return 0.0
        edge = min(CLOUD_EDGE_S, (self.end - self.start) / 4)
        ramp = min(now - self.start, self.end - now, edge) / edge
        return self.depth * ramp


@dataclass
class PvModel:
    """One PV inverter's output; `power_kw` is the state a protocol layer exposes, `cap_kw`
    the cap a controller set on it (None: none)."""

    id: str
    node: int
    peak_kw: float
    sunrise_hour: float
    sunset_hour: float
    start_hour: float
    clouds: list[Cloud] = field(default_factory=list)
    power_kw: float = 0.0
    cap_kw: float | None = None
    available_kw: float = 0.0
    """What it would produce without the cap."""

    def clear_sky(self, now: float) -> float:
        """Irradiance share (0-1) at simulated second `now`, without clouds."""
        hour = (self.start_hour + now / 3600.0) % 24.0
        if not self.sunrise_hour < hour < self.sunset_hour:
            return 0.0
        return math.sin(
            math.pi * (hour - self.sunrise_hour) / (self.sunset_hour - self.sunrise_hour)
        )

    def step(self, now: float) -> float:
        """Update and return the output power (kW) at `now`: what the sun gives, within
        the cap."""
        shade = max((c.shade(now) for c in self.clouds), default=0.0)
        self.available_kw = self.peak_kw * self.clear_sky(now) * (1.0 - shade)
        cap = self.cap_kw
        self.power_kw = self.available_kw if cap is None else min(self.available_kw, cap)
        return self.power_kw
