"""Scenario files: which site to simulate, its EVs, loads, weather and timed events.

One pydantic model per TOML table; unknown keys are errors, as in site files.
References into the site (node, meter, charger and PV ids) are checked by
`hubgate.sim.scenario_loader` once the site is loaded.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from hubgate.config.base import Identifier, PhaseCurrents, Strict
from hubgate.sim.station_personalities import PersonalityName

Fraction = Annotated[float, Field(ge=0, le=1)]
SimSeconds = Annotated[float, Field(gt=0, le=30 * 86_400, description="Simulated seconds")]


def _ordered(pair: tuple[float, float]) -> tuple[float, float]:
    if pair[0] > pair[1]:
        raise ValueError(f"give [low, high] with low <= high, got {list(pair)}")
    return pair


NonNegative = Annotated[float, Field(ge=0)]
FractionRange = Annotated[tuple[Fraction, Fraction], AfterValidator(_ordered)]
SecondsRange = Annotated[tuple[NonNegative, NonNegative], AfterValidator(_ordered)]


class ScenarioHeader(Strict):
    """What to simulate, for how long, from which seed."""

    name: str = Field(min_length=1, max_length=200)
    site: str = Field(min_length=1, description="Site file, relative to the scenario file")
    duration_s: SimSeconds = 3600.0
    step_s: float = Field(default=1.0, ge=0.1, le=1.0, description="Fixed simulated time step")
    seed: int = Field(default=0, ge=0, description="Seeds arrivals, EV draws and load noise")
    start_hour: float = Field(default=12.0, ge=0, lt=24, description="Time of day at t = 0")


class EvType(Strict):
    """One kind of EV in the mix; each arriving EV is drawn by weight."""

    name: str = Field(min_length=1, max_length=64)
    weight: float = Field(default=1.0, gt=0)
    capacity_kwh: float = Field(gt=0, le=2000)
    max_current_a: float = Field(gt=0, le=500, description="Onboard charger maximum per phase")
    phases: Literal[1, 3] = Field(default=3, description="1 or 3 phases on AC")
    reaction_s: SecondsRange = Field(
        default=(3.0, 5.0), description="Delay to follow a new limit: [low, high] seconds"
    )
    arrival_soc: FractionRange = (0.1, 0.6)
    target_soc: Fraction = 0.9
    taper_from_soc: Fraction = Field(
        default=0.8, description="Above this state of charge the current falls linearly to 0"
    )


class Arrivals(Strict):
    """The seeded arrival process: Poisson arrivals onto free connectors."""

    initial_occupancy: Fraction = Field(
        default=0.5, description="Share of connectors with an EV at t = 0"
    )
    rate_per_hour: float = Field(default=0.0, ge=0, le=100_000)
    mean_stay_h: float = Field(default=2.0, gt=0, le=240)


class BaseLoad(Strict):
    """Non-EV load measured at a node (lighting, HVAC, workshop...)."""

    node: Identifier
    amps: PhaseCurrents
    variation_percent: float = Field(
        default=0.0, ge=0, le=100, description="Bounded seeded random walk around `amps`"
    )


class PvWeather(Strict):
    """The clear-sky irradiance curve of the day."""

    sunrise_hour: float = Field(default=6.0, ge=0, lt=24)
    sunset_hour: float = Field(default=20.0, gt=0, le=24)

    @model_validator(mode="after")
    def _day(self) -> PvWeather:
        if self.sunrise_hour >= self.sunset_hour:
            raise ValueError("sunrise_hour must be before sunset_hour")
        return self


class BatteryStart(Strict):
    """The stationary battery's state at t = 0."""

    soc_percent: float = Field(default=50.0, ge=0, le=100)


class Recorder(Strict):
    """The safety recorder."""

    reaction_s: float | None = Field(
        default=None,
        gt=0,
        description="Tolerated time above a limit after its cause; default: slowest EV "
        "reaction + control cycle + one step",
    )


class EventKind(StrEnum):
    """What can happen during a scenario."""

    METER_DIES = "meter-dies"
    CHARGER_OFFLINE = "charger-offline"
    CSMS_DOWN = "csms-down"
    GRID_LIMIT = "grid-limit"
    FEED_IN_LIMIT = "feed-in-limit"
    CLOUD = "cloud"


_EVENT_FIELDS: dict[EventKind, tuple[str, ...]] = {
    EventKind.METER_DIES: ("meter",),
    EventKind.CHARGER_OFFLINE: ("charger",),
    EventKind.CSMS_DOWN: (),
    EventKind.GRID_LIMIT: ("percent",),
    EventKind.FEED_IN_LIMIT: ("percent",),
    EventKind.CLOUD: ("pv", "depth_percent"),
}
_OPTIONAL_EVENT_FIELDS = ("pv",)


class Event(Strict):
    """A timed event; `duration_s` ends it (restores the device), else it lasts."""

    at_s: float = Field(ge=0)
    kind: EventKind
    duration_s: SimSeconds | None = None
    meter: Identifier | None = None
    charger: Identifier | None = None
    pv: Identifier | None = Field(default=None, description="For a cloud: one PV, or every PV")
    percent: float | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Grid-operator limit: on import (% of the connection), or on feed-in "
        "(% of the installed PV power)",
    )
    depth_percent: float | None = Field(
        default=None, ge=0, le=100, description="Irradiance lost under the cloud"
    )

    @model_validator(mode="after")
    def _fields_of_kind(self) -> Event:
        wanted = _EVENT_FIELDS[self.kind]
        every = {f for fields in _EVENT_FIELDS.values() for f in fields}
        for name in sorted(every):
            given = getattr(self, name) is not None
            if name in wanted and not given and name not in _OPTIONAL_EVENT_FIELDS:
                raise ValueError(f"a '{self.kind}' event needs '{name}'")
            if given and name not in wanted:
                allowed = ", ".join(wanted) or "none"
                raise ValueError(
                    f"'{name}' does not apply to a '{self.kind}' event (its keys: {allowed})"
                )
        return self


class Scenario(Strict):
    """A whole scenario file."""

    scenario: ScenarioHeader
    arrivals: Arrivals = Arrivals()
    ev_mix: tuple[EvType, ...] = Field(min_length=1)
    base_load: tuple[BaseLoad, ...] = ()
    pv_weather: PvWeather = PvWeather()
    battery: BatteryStart = BatteryStart()
    recorder: Recorder = Recorder()
    events: tuple[Event, ...] = ()
    personalities: dict[Identifier, PersonalityName] = Field(
        default_factory=dict,
        description="OCPP charger id = how it departs from the book, as a real charger a "
        "user reported (hubgate.sim.station_personalities): w-only, ignores-profiles, ...",
    )
