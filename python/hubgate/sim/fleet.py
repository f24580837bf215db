"""A fleet's timetable: vehicles that arrive in a window, need an energy amount and leave at
their departure (an overnight bus depot, a truck stop's short dwells).

Seeded: the arrival times, departures, vehicle kinds, arrival states of charge and needs
are drawn once from the scenario's seed. Each vehicle's target state of charge is its
arrival state plus its need (at most full), so an EV that gets its need stops drawing; a
told vehicle's need and departure are handed to the controller when it plugs in (as a
depot's system would through `PUT /api/v1/connectors/{charger}/{connector}/session`).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from hubgate.sim.ev import Ev
from hubgate.sim.scenario import EvType, Fleet

HOUR_S = 3600.0


@dataclass(frozen=True, slots=True)
class Vehicle:
    """One vehicle of the timetable (times in simulated seconds)."""

    number: int
    arrives_at: float
    departs_at: float
    need_kwh: float
    kind: EvType
    soc: float
    reaction_s: float

    def ev(self) -> Ev:
        """The EV it plugs in as."""
        kind = self.kind
        return Ev(
            capacity_kwh=kind.capacity_kwh,
            max_current_a=kind.max_current_a,
            phases=kind.phases,
            reaction_s=self.reaction_s,
            soc=self.soc,
            target_soc=min(self.soc + self.need_kwh / kind.capacity_kwh, 1.0),
            taper_from_soc=kind.taper_from_soc,
            departs_at=self.departs_at,
            kind=kind.name,
            need_kwh=self.need_kwh,
            vehicle=self.number,
        )


def timetable(
    fleet: Fleet, mix: Sequence[EvType], start_hour: float, rng: random.Random
) -> list[Vehicle]:
    """The fleet's vehicles by arrival time. Hours are of the scenario's first day; an hour
    before `start_hour` is the next day's (a departure at 05:00 after a start at 17:00)."""

    def at(hour: float) -> float:
        if hour < start_hour:
            hour += 24.0
        return (hour - start_hour) * HOUR_S

    weights = [t.weight for t in mix]
    vehicles = []
    for number in range(fleet.vehicles):
        kind = rng.choices(mix, weights=weights)[0]
        arrives = max(at(rng.uniform(*fleet.arrival_hour)), 0.0)
        if fleet.departure_hour is not None:
            departs = at(rng.uniform(*fleet.departure_hour))
        else:
            assert fleet.dwell_h is not None
            departs = arrives + rng.uniform(*fleet.dwell_h) * HOUR_S
        soc = rng.uniform(*kind.arrival_soc)
        need = min(rng.uniform(*fleet.energy_kwh), (1.0 - soc) * kind.capacity_kwh)
        vehicles.append(
            Vehicle(
                number,
                arrives,
                max(departs, arrives + 60.0),
                need,
                kind,
                soc,
                rng.uniform(*kind.reaction_s),
            )
        )
    vehicles.sort(key=lambda v: (v.arrives_at, v.number))
    return vehicles


@dataclass(frozen=True, slots=True)
class VehicleOutcome:
    """What a fleet vehicle got by its departure."""

    number: int
    kind: str
    arrives_at: float
    departs_at: float
    need_kwh: float
    delivered_kwh: float

    @classmethod
    def of(cls, vehicle: Vehicle, delivered_kwh: float) -> VehicleOutcome:
        """The outcome of `vehicle`, which got `delivered_kwh`."""
        return cls(
            vehicle.number,
            vehicle.kind.name,
            vehicle.arrives_at,
            vehicle.departs_at,
            vehicle.need_kwh,
            delivered_kwh,
        )

    @property
    def shortfall_kwh(self) -> float:
        """What it lacked when it left."""
        return max(self.need_kwh - self.delivered_kwh, 0.0)

    @property
    def finished(self) -> bool:
        """Whether it got its need (to 0.1 %)."""
        return self.delivered_kwh >= self.need_kwh * 0.999


@dataclass(frozen=True, slots=True)
class FleetSummary:
    """The fleet's figures over a run: energy by departure, shortfall, import, cost (the
    demand peak is the safety summary's, `Summary.demand_peak_kw`)."""

    vehicles: int
    finished: int
    needed_kwh: float
    delivered_kwh: float
    shortfall_kwh: float
    worst_shortfall_kwh: float
    import_kwh: float
    cost: float | None
    """The import's cost under the scenario's prices (None without `[prices]`)."""

    def to_text(self) -> str:
        """The figures for a person."""
        cost = "" if self.cost is None else f"; cost {self.cost:.2f}"
        return (
            f"fleet: {self.finished} of {self.vehicles} vehicles finished by departure; "
            f"{self.delivered_kwh:.1f} of {self.needed_kwh:.1f} kWh delivered, shortfall "
            f"{self.shortfall_kwh:.1f} kWh (worst vehicle {self.worst_shortfall_kwh:.1f} kWh)\n"
            f"grid: {self.import_kwh:.1f} kWh imported{cost}"
        )


def fleet_summary(
    outcomes: Sequence[VehicleOutcome],
    grid_power_w: Sequence[float],
    step_s: float,
    start_hour: float,
    hourly_prices: Sequence[float] | None,
) -> FleetSummary:
    """The figures from the vehicles' outcomes and the grid power of every step (W, import
    positive), the run starting at `start_hour` of the day."""
    import_kwh = cost = 0.0
    for k, watts in enumerate(grid_power_w):
        kwh = max(watts, 0.0) * step_s / 3.6e6
        day_s = start_hour * HOUR_S + k * step_s
        import_kwh += kwh
        if hourly_prices is not None:
            cost += kwh * hourly_prices[int(day_s // HOUR_S) % 24]
    shortfalls = [o.shortfall_kwh for o in outcomes]
    return FleetSummary(
        vehicles=len(outcomes),
        finished=sum(o.finished for o in outcomes),
        needed_kwh=sum(o.need_kwh for o in outcomes),
        delivered_kwh=sum(min(o.delivered_kwh, o.need_kwh) for o in outcomes),
        shortfall_kwh=sum(shortfalls),
        worst_shortfall_kwh=max(shortfalls, default=0.0),
        import_kwh=import_kwh,
        cost=None if hourly_prices is None else cost,
    )
