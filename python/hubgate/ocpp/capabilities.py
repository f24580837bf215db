"""What a charger can take, asked on every boot, kept, and corrected from the site file.

OCPP 1.6 names its smart-charging limits as configuration keys (§3.13.5, read with
GetConfiguration); 2.0.1 and 2.1 as variables of the SmartChargingCtrlr component
(read with GetVariables), with the station's clock in ClockCtrlr.DateTime:

| capability | 1.6 key | 2.x variable |
|---|---|---|
| rate units | ChargingScheduleAllowedChargingRateUnit ("Current,Power") | SmartChargingCtrlr.RateUnit ("A,W") |
| highest stack level | ChargeProfileMaxStackLevel | SmartChargingCtrlr.ProfileStackLevel |
| profiles it holds | MaxChargingProfilesInstalled | SmartChargingCtrlr.Entries[ChargingProfiles] (MaxSet) |
| periods per schedule | ChargingScheduleMaxPeriods | SmartChargingCtrlr.PeriodsPerSchedule |
| 3 to 1 phase switching | ConnectorSwitch3to1PhaseSupported | SmartChargingCtrlr.Phases3to1 |
| clock | (message timestamps, `ClockEstimate`) | ClockCtrlr.DateTime |

A key the charger does not know stays None (unknown), never a guess. Chargers report
what they are not: users report chargers that advertise "Current,Power" but take only W
(evcc-io/evcc#9838), or a lower-case "power" (lbbrhzn/ocpp#1635); `CapabilityOverride`
from the site file wins over what the charger says.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from hubgate.config.model import CapabilityOverride
from hubgate.ocpp.meter_values import parse_timestamp
from hubgate.ocpp.rpc import Payload
from hubgate.ocpp.session import OcppSession
from hubgate.ocpp.versions import OcppVersion

RateUnit = Literal["A", "W"]

CLOCK_TOLERANCE_S = 5.0
"""A charger's clock this close to ours counts as right: profiles go out on our clock."""
CLOCK_RIGHT_AGAIN_S = 2.5
"""A clock once counted off counts as right again only this close to ours: an estimate
near `CLOCK_TOLERANCE_S` (a right clock read through a loaded gateway's delays, 4-6 s)
would otherwise change the lease's shape back and forth, each change a new lease."""


@dataclass(frozen=True)
class Capabilities:
    """How a charger takes limits; None where it did not say."""

    rate_units: tuple[RateUnit, ...] = ("A",)
    max_stack_level: int | None = None
    max_profiles: int | None = None
    max_periods: int | None = None
    phase_switch: bool | None = None
    clock_offset_s: float | None = None
    """The charger's clock minus ours (s), as last measured."""
    honours_valid_to: bool | None = None
    """Whether its composite schedule drops a profile at its validTo (seen, not reported)."""
    clock_was_off: bool = False
    """Its clock counted as off before (`clock_off`'s hysteresis); not kept in the file."""

    @property
    def rate_unit(self) -> RateUnit:
        """The unit hubgate's profiles use: amperes when the charger takes both."""
        return "A" if "A" in self.rate_units else "W"

    @property
    def clock_off(self) -> bool:
        """Whether the charger's clock is off by more than `CLOCK_TOLERANCE_S` (by more
        than `CLOCK_RIGHT_AGAIN_S` when it `clock_was_off`)."""
        offset = self.clock_offset_s
        if offset is None or not math.isfinite(offset):
            return False
        return abs(offset) > (CLOCK_RIGHT_AGAIN_S if self.clock_was_off else CLOCK_TOLERANCE_S)

    def corrected(self, override: CapabilityOverride | None) -> Capabilities:
        """These capabilities with what the site file says instead."""
        if override is None:
            return self
        given = override.model_dump(exclude_none=True)
        if "rate_unit" in given:
            given["rate_units"] = (given.pop("rate_unit"),)
        return replace(self, **given)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (lists for tuples)."""
        data = asdict(self)
        data["rate_units"] = list(self.rate_units)
        del data["clock_was_off"]  # this run's, not the charger's
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Capabilities:
        """The inverse of `to_json`; unknown keys are ignored (an older or newer file)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        units = tuple(u for u in values.pop("rate_units", ("A",)) if u in ("A", "W"))
        return cls(rate_units=units or ("A",), **values)


def parse_rate_units(text: str | None) -> tuple[RateUnit, ...] | None:
    """ "Current,Power" (1.6), "A,W" (2.x), "power", ... → ("A", "W"); None when unreadable."""
    if text is None:
        return None
    units: list[RateUnit] = []
    for token in text.replace(";", ",").replace(" ", ",").split(","):
        word = token.strip().lower()
        unit: RateUnit | None = (
            "A" if word in ("current", "a") else "W" if word in ("power", "w") else None
        )
        if unit is not None and unit not in units:
            units.append(unit)
    return tuple(units) or None


def _integer(text: str | None) -> int | None:
    try:
        return None if text is None else int(float(text))
    except ValueError:
        return None


def parse_boolean(text: str | None) -> bool | None:
    """An OCPP boolean setting ("true", "false", any case; "1", "0"); None when unreadable."""
    if text is None:
        return None
    word = text.strip().lower()
    return True if word in ("true", "1", "yes") else False if word in ("false", "0", "no") else None


V16_KEYS = (
    "ChargingScheduleAllowedChargingRateUnit",
    "ChargeProfileMaxStackLevel",
    "MaxChargingProfilesInstalled",
    "ChargingScheduleMaxPeriods",
    "ConnectorSwitch3to1PhaseSupported",
)

V2_VARIABLES: tuple[tuple[str, str, str | None, str], ...] = (
    ("SmartChargingCtrlr", "RateUnit", None, "Actual"),
    ("SmartChargingCtrlr", "ProfileStackLevel", None, "Actual"),
    ("SmartChargingCtrlr", "Entries", "ChargingProfiles", "MaxSet"),
    ("SmartChargingCtrlr", "PeriodsPerSchedule", None, "Actual"),
    ("SmartChargingCtrlr", "Phases3to1", None, "Actual"),
    ("ClockCtrlr", "DateTime", None, "Actual"),
)
"""(component, variable, variable instance, attribute type) asked of a 2.x station."""


async def discover(session: OcppSession, *, timeout_s: float | None = None) -> Capabilities:
    """Ask the charger (one GetConfiguration or GetVariables) what it takes."""
    if session.version is OcppVersion.V16:
        result = await session.call(
            "GetConfiguration", {"key": list(V16_KEYS)}, timeout_s=timeout_s
        )
        values = {k["key"]: k.get("value") for k in result.get("configurationKey", [])}
        return Capabilities(
            rate_units=parse_rate_units(values.get(V16_KEYS[0])) or ("A",),
            max_stack_level=_integer(values.get(V16_KEYS[1])),
            max_profiles=_integer(values.get(V16_KEYS[2])),
            max_periods=_integer(values.get(V16_KEYS[3])),
            phase_switch=parse_boolean(values.get(V16_KEYS[4])),
        )
    requests: list[Payload] = []
    for component, variable, instance, attribute in V2_VARIABLES:
        item: Payload = {
            "component": {"name": component},
            "variable": {"name": variable}
            if instance is None
            else {"name": variable, "instance": instance},
        }
        if attribute != "Actual":
            item["attributeType"] = attribute
        requests.append(item)
    sent = datetime.now(UTC)
    result = await session.call("GetVariables", {"getVariableData": requests}, timeout_s=timeout_s)
    received = datetime.now(UTC)
    answers: dict[str, str | None] = {}
    for item in result.get("getVariableResult", []):
        if item.get("attributeStatus") == "Accepted":
            answers[item["variable"]["name"]] = item.get("attributeValue")
    return Capabilities(
        rate_units=parse_rate_units(answers.get("RateUnit")) or ("A",),
        max_stack_level=_integer(answers.get("ProfileStackLevel")),
        max_profiles=_integer(answers.get("Entries")),
        max_periods=_integer(answers.get("PeriodsPerSchedule")),
        phase_switch=parse_boolean(answers.get("Phases3to1")),
        clock_offset_s=_clock_offset(answers.get("DateTime"), sent, received),
    )


def _clock_offset(text: str | None, sent: datetime, received: datetime) -> float | None:
    """The charger's time `text`, read between `sent` and `received`, minus ours (s)."""
    if text is None:
        return None
    try:
        theirs = parse_timestamp(text)
    except ValueError:
        return None
    return (theirs - (sent + (received - sent) / 2)).total_seconds()


class ClockEstimate:
    """The charger's clock minus ours, from the timestamps of what it sends.

    A message can only arrive after it was stamped, so each sample (its timestamp minus
    the time it arrived) is the offset less the message's delay; the largest of the
    recent samples is the best estimate. Messages queued while offline, or stamped at the
    time of an earlier event, only lower a sample and are outvoted by fresh ones. A charger
    sets its clock when it boots (from the CSMS's time, or its own), so a boot starts over.
    """

    def __init__(self, window: int = 8) -> None:
        self._samples: deque[float] = deque(maxlen=window)

    def stamped(self, text: object, arrived: datetime | None = None) -> None:
        """A message stamped `text` (OCPP date-time) arrived at `arrived` (default: now)."""
        if not isinstance(text, str):
            return
        try:
            moment = parse_timestamp(text)
        except ValueError:
            return
        self.stamped_at(moment, arrived)

    def stamped_at(self, moment: datetime, arrived: datetime | None = None) -> None:
        """A message stamped `moment` arrived at `arrived` (default: now)."""
        self._samples.append((moment - (arrived or datetime.now(UTC))).total_seconds())

    def measured(self, offset_s: float) -> None:
        """A direct reading of the offset (a clock variable, a composite's start)."""
        self._samples.append(offset_s)

    def restart(self) -> None:
        """The charger booted: what its clock said before no longer counts."""
        self._samples.clear()

    @property
    def offset_s(self) -> float | None:
        """The estimate, None before any sample."""
        return max(self._samples) if self._samples else None


def on_charger_clock(moment: datetime, capabilities: Capabilities) -> datetime:
    """`moment` on our clock as the charger's clock shows it (when its clock is off)."""
    offset_s = capabilities.clock_offset_s
    if offset_s is None or not capabilities.clock_off:
        return moment
    return moment + timedelta(seconds=offset_s)
