"""The seeded arrival process: which EV comes when, and for how long it stays."""

from __future__ import annotations

import random
from collections.abc import Sequence

from hubgate.sim.ev import Ev
from hubgate.sim.scenario import Arrivals, EvType

MIN_STAY_S = 600.0
"""No EV leaves sooner than this after it arrived."""


class ArrivalProcess:
    """Poisson arrivals at `rate_per_hour`; stays exponential around `mean_stay_h`."""

    def __init__(self, arrivals: Arrivals, mix: Sequence[EvType], rng: random.Random) -> None:
        self._arrivals = arrivals
        self._mix = tuple(mix)
        self._weights = [t.weight for t in mix]
        self._rng = rng
        self._rate_per_s = arrivals.rate_per_hour / 3600.0
        self._next_at = self._draw_gap(0.0)

    def _draw_gap(self, now: float) -> float:
        if self._rate_per_s <= 0:
            return float("inf")
        return now + self._rng.expovariate(self._rate_per_s)

    def initial_count(self, connectors: int) -> int:
        """How many connectors have an EV at t = 0."""
        return round(self._arrivals.initial_occupancy * connectors)

    def due(self, now: float) -> int:
        """How many EVs arrive up to `now` (since the last call)."""
        count = 0
        while self._next_at <= now:
            count += 1
            self._next_at = self._draw_gap(self._next_at)
        return count

    def pick(self, free: Sequence[int]) -> int:
        """The connector (one of `free`) an arriving EV plugs into."""
        return self._rng.choice(free)

    def new_ev(self, now: float) -> Ev:
        """An EV drawn from the mix, arriving at `now`."""
        rng = self._rng
        kind = rng.choices(self._mix, weights=self._weights)[0]
        stay = max(MIN_STAY_S, rng.expovariate(1.0 / (self._arrivals.mean_stay_h * 3600.0)))
        return Ev(
            capacity_kwh=kind.capacity_kwh,
            max_current_a=kind.max_current_a,
            phases=kind.phases,
            reaction_s=rng.uniform(*kind.reaction_s),
            soc=rng.uniform(*kind.arrival_soc),
            target_soc=kind.target_soc,
            taper_from_soc=kind.taper_from_soc,
            departs_at=now + stay,
            kind=kind.name,
        )
