"""Provisioning at boot: what a charger reports in its meter values, and how often.

Chargers often sample only the energy register, every 60 to 900 s (go-e: no energy
during a session, goecharger/go-eCharger-API-v2#105; Growatt: energy only at the
transaction's start, lbbrhzn/ocpp#1838), which leaves the control loop on old or
missing currents. hubgate asks for per-phase current, power, the energy register and
SoC at an interval tied to the control cycle (one it already samples at least as
often is kept):

| version | measurands | interval |
|---|---|---|
| 1.6 | MeterValuesSampledData | MeterValueSampleInterval |
| 2.x | SampledDataCtrlr.TxUpdatedMeasurands | SampledDataCtrlr.TxUpdatedInterval |

A charger that rejects the list (some reject SoC or any unknown measurand: Alfen,
lbbrhzn/ocpp#337; EVBox, lbbrhzn/ocpp#221) is asked again with shorter ones; every
answer is kept per setting, so the API shows what each charger accepted and refused.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from hubgate.ocpp.errors import OcppCallError
from hubgate.ocpp.operations import ChargerOperations
from hubgate.ocpp.session import OcppSession
from hubgate.ocpp.versions import OcppVersion

LOG = logging.getLogger("hubgate.ocpp")

MEASURAND_LISTS: tuple[tuple[str, ...], ...] = (
    ("Current.Import", "Power.Active.Import", "Energy.Active.Import.Register", "SoC"),
    ("Current.Import", "Power.Active.Import", "Energy.Active.Import.Register"),
    ("Current.Import", "Energy.Active.Import.Register"),
    ("Power.Active.Import", "Energy.Active.Import.Register"),
)
"""Tried in order until the charger accepts one."""

LONGEST_INTERVAL_S = 10
"""The longest sample interval asked for while charging."""

ACCEPTED = ("Accepted", "RebootRequired")
"""Answers that take the value (RebootRequired: at the charger's next boot)."""


def sample_interval_s(cycle_s: float) -> int:
    """Five control cycles, rounded to whole seconds, between 1 and `LONGEST_INTERVAL_S`."""
    return max(1, min(LONGEST_INTERVAL_S, round(5 * cycle_s)))


@dataclass(frozen=True)
class Provisioning:
    """What a charger was asked at its last boot and how it answered."""

    interval_s: int
    measurands: tuple[str, ...] | None
    """The list it accepted; None when it accepted none."""
    accepted: dict[str, str] = field(default_factory=dict)
    """Setting → value taken."""
    rejected: dict[str, str] = field(default_factory=dict)
    """Setting → "value: answer" for each value refused."""


def _seconds(text: str | None) -> float | None:
    try:
        return None if text is None else float(text)
    except ValueError:
        return None


def _names(version: OcppVersion) -> tuple[str, str]:
    if version is OcppVersion.V16:
        return "MeterValuesSampledData", "MeterValueSampleInterval"
    return "SampledDataCtrlr.TxUpdatedMeasurands", "SampledDataCtrlr.TxUpdatedInterval"


async def provision(
    session: OcppSession, interval_s: int, *, timeout_s: float | None = None
) -> Provisioning:
    """Ask for the measurands (longest list it takes) and the sample interval."""
    operations = ChargerOperations(session, timeout_s=timeout_s)
    measurands_name, interval_name = _names(session.version)
    accepted: dict[str, str] = {}
    rejected: dict[str, str] = {}

    async def change(name: str, value: str) -> bool:
        try:
            status = await operations.change_setting(name, value)
        except OcppCallError as error:
            status = error.code
        if status in ACCEPTED:
            accepted[name] = value
            return True
        rejected[name] = (
            f"{rejected[name]}; {value}: {status}" if name in rejected else (f"{value}: {status}")
        )
        return False

    taken: tuple[str, ...] | None = None
    for measurands in MEASURAND_LISTS:
        if await change(measurands_name, ",".join(measurands)):
            taken = measurands
            break
    current = _seconds((await operations.get_settings([interval_name]))[interval_name])
    if current is not None and 0 < current <= interval_s:  # already as often: kept
        interval_s = round(current)
    else:
        await change(interval_name, str(interval_s))
    if rejected:
        LOG.info("%s: provisioning refused: %s", session.identity, rejected)
    return Provisioning(interval_s, taken, accepted, rejected)
