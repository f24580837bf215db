"""Simulated charge points that behave like real ones users reported, chosen per charger in
a scenario (`[personalities]`, charger id = name).

Each personality is a set of departures from the book that a simulated OCPP station
(`ocpp_station.Station`) consults; the reports they come from:

| name | what the station does | reported |
|---|---|---|
| `w-only` | takes charging profiles in W only, reports `Power` / `W` | Huawei FusionCharger, lbbrhzn/ocpp#1635; HomeCharge (EFR), evcc-io/evcc#9838; 2.0.1 RateUnit W, lbbrhzn/ocpp#2134 |
| `charge-point-max-only` | rejects TxDefaultProfile (the station maximum only) | chargers that take one purpose and not the other, lbbrhzn/ocpp#221 and PR #312 (in-tech "charge control C") |
| `ignores-valid-to` | keeps applying a profile after its validTo | accepted profiles not applied as set, steve-community/steve#1192; validity handling bugs, citrineos/citrineos-core#940 |
| `one-stack-level` | ChargeProfileMaxStackLevel 0: rejects any higher level | EVBox Elvi, lbbrhzn/ocpp#221 |
| `energy-only-60s` | MeterValues of the energy register only, every 60 s, whatever it is asked | go-e, goecharger/go-eCharger-API-v2#105; Growatt THOR, lbbrhzn/ocpp#1838 |
| `clock-7-min-off` | its clock runs 7 minutes behind the CSMS's (ignores currentTime) | NTP overriding the OCPP time, Tinkerforge/esp32-firmware#317; 1970 stamps before boot, matth-x/MicroOcpp#354 |
| `ignores-profiles` | answers Accepted, applies nothing; its composite shows its maximum | go-e, goecharger/go-eCharger-API-v2#249 and #105 |
| `pending-boot` | answers no call for its first 20 s after connecting, then boots | Wallbox answers nothing before its BootNotification is processed, lbbrhzn/ocpp#1503, evcc-io/evcc#27309; Pending handling, EVerest/libocpp#478 |
| `reboots` | drops its connection every 150 s and boots again | lbbrhzn/ocpp#1099 (every 60 s); Wallbox daily reboots, evcc-io/evcc#27309 |
| `phase-switch-pause` | switches 3 to 1 phase only after 30 s at 0 A; before that it keeps its phases | KEBA needs a 30 s pause, evcc-io/evcc#25991; phases switched under load, traktore-org/sem-community#804, EVerest/EVerest#1038 |
| `dc-min-power` | a DC station (its site connector's `dc` table: power, minimum, ramp): W only; idle with a limit below its minimum it shows Unavailable (NoFreePower) and starts no session | Alpitronic hypercharger "unavailable - NoFreePower" under load management, evcc-io/evcc#28493 |

Any station whose site connector has a `dc` table behaves as a DC charger: W limits are DC
power, under its minimum power it offers nothing, its power follows a new limit at its ramp
rate, and it reports DC power (no phase currents).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class PersonalityName(StrEnum):
    """The personalities a scenario can give a charger."""

    W_ONLY = "w-only"
    CHARGE_POINT_MAX_ONLY = "charge-point-max-only"
    IGNORES_VALID_TO = "ignores-valid-to"
    ONE_STACK_LEVEL = "one-stack-level"
    ENERGY_ONLY_60S = "energy-only-60s"
    CLOCK_7_MIN_OFF = "clock-7-min-off"
    IGNORES_PROFILES = "ignores-profiles"
    PENDING_BOOT = "pending-boot"
    REBOOTS = "reboots"
    PHASE_SWITCH_PAUSE = "phase-switch-pause"
    DC_MIN_POWER = "dc-min-power"


ENERGY = "Energy.Active.Import.Register"


@dataclass(frozen=True)
class Personality:
    """How one simulated station departs from the book (the defaults follow it)."""

    rate_units: tuple[str, ...] = ("A", "W")
    rejected_purposes: frozenset[str] = frozenset()
    ignores_valid_to: bool = False
    max_stack_level: int = 8
    max_profiles: int | None = None
    """MaxChargingProfilesInstalled / SmartChargingCtrlr.Entries (None: not said, no limit)."""
    max_periods: int | None = None
    """ChargingScheduleMaxPeriods / SmartChargingCtrlr.PeriodsPerSchedule (None: not said)."""
    measurands: tuple[str, ...] | None = None
    """What it samples whatever it is asked (None: what it is asked, else everything)."""
    meter_values_s: float | None = None
    """Its fixed sample interval (None: what it is asked)."""
    clock_offset_s: float = 0.0
    """Its clock minus the CSMS's while connected."""
    ignores_profiles: bool = False
    deaf_after_connect_s: float = 0.0
    """Answers no call this long after each connection, then sends its BootNotification."""
    reboot_every_s: float | None = None
    """Simulated seconds between reboots (a dropped connection and a new boot)."""
    phase_switch_pause_s: float | None = None
    """Switches its phases only after this long at 0 A (None: at once)."""
    no_free_power: bool = False
    """Idle with a limit under its minimum power, it shows Unavailable and starts nothing."""

    @property
    def reported_units(self) -> str:
        """ChargingScheduleAllowedChargingRateUnit (1.6) for its rate units."""
        return ",".join({"A": "Current", "W": "Power"}[u] for u in self.rate_units)

    def takes(self, purpose: str, stack_level: int, unit: str) -> bool:
        """Whether it accepts a profile of this purpose, stack level and unit."""
        if purpose in self.rejected_purposes or stack_level > self.max_stack_level:
            return False
        return unit in self.rate_units


BOOK = Personality()
"""A station that does what the specification says."""

PERSONALITIES: dict[PersonalityName, Personality] = {
    PersonalityName.W_ONLY: Personality(rate_units=("W",)),
    PersonalityName.CHARGE_POINT_MAX_ONLY: Personality(
        rejected_purposes=frozenset({"TxDefaultProfile"})
    ),
    PersonalityName.IGNORES_VALID_TO: Personality(ignores_valid_to=True),
    PersonalityName.ONE_STACK_LEVEL: Personality(max_stack_level=0),
    PersonalityName.ENERGY_ONLY_60S: Personality(measurands=(ENERGY,), meter_values_s=60.0),
    PersonalityName.CLOCK_7_MIN_OFF: Personality(clock_offset_s=-420.0),
    PersonalityName.IGNORES_PROFILES: Personality(ignores_profiles=True),
    PersonalityName.PENDING_BOOT: Personality(deaf_after_connect_s=20.0),
    PersonalityName.REBOOTS: Personality(reboot_every_s=150.0),
    PersonalityName.PHASE_SWITCH_PAUSE: Personality(phase_switch_pause_s=30.0),
    PersonalityName.DC_MIN_POWER: Personality(rate_units=("W",), no_free_power=True),
}


def personality(name: PersonalityName | None) -> Personality:
    """The personality of that name; the book's when None."""
    return BOOK if name is None else PERSONALITIES[name]
