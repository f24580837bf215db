"""The stationary battery and PV inverters as the control loop sees them.

    battery = BatteryDevice(driver_for("battery", load_named("sma-sunny-boy-storage"), link))
    state = battery_state(await battery.read())      # SoC and power (positive = discharging)
    await battery.command(-5000)                     # charge 5 kW; 3000 discharges, 0 idles

A battery is commanded with one signed power through its profile's charge and
discharge power limits: discharging P writes the discharge limit P and the
charge limit 0, charging C the other way round, idling 0 to both. A direction
the profile has no command for cannot be commanded, and the policy rates the
battery at the lower of its site-file rating and the profile's bounds
(`max_charge_w`, `max_discharge_w`; 0 W without a command). A device that runs its own
self-consumption control moves within these limits; the control loop counts a
discharge only once it is measured, so that is safe either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from hubgate.control.energy import BatteryReading
from hubgate.devices.errors import DeviceError
from hubgate.devices.model import Reading
from hubgate.devices.profile_driver import ProfileBattery, ProfileDevice
from hubgate.profiles.model import Quantity

CHARGE = "charge_power_limit"
DISCHARGE = "discharge_power_limit"


def battery_power_w(reading: Reading) -> float | None:
    """The battery's power (positive = discharging): `battery_power`, else the negated
    AC `power_total` (seen from the site, positive = drawn)."""
    power = reading.get(Quantity.BATTERY_POWER)
    if power is not None:
        return power
    total = reading.get(Quantity.POWER_TOTAL)
    return None if total is None else -total


def pv_power_w(reading: Reading) -> float | None:
    """A PV inverter's output: its `pv_power`, else its AC `power_total` (negative when
    producing; a hybrid inverter's `power_total` may be its grid sensor, so it comes second)."""
    pv = reading.get(Quantity.PV_POWER)
    if pv is not None:
        return pv
    total = reading.get(Quantity.POWER_TOTAL)
    return None if total is None else max(-total, 0.0)


def battery_state(reading: Reading) -> BatteryReading | None:
    """SoC and power from a battery's reading; None when either is missing or not available."""
    soc = reading.get(Quantity.SOC)
    power = battery_power_w(reading)
    if soc is None or power is None:
        return None
    return BatteryReading(at=reading.at, soc_percent=soc, power_w=power)


@dataclass(frozen=True)
class BatteryCommandResult:
    """The limits the battery confirmed (read back), in W."""

    charge_w: float
    discharge_w: float

    @property
    def power_w(self) -> float:
        """The command in force: positive discharges."""
        return self.discharge_w - self.charge_w


class Battery(Protocol):
    """What the control loop needs of a stationary battery."""

    @property
    def id(self) -> str:
        """The device id from the site file."""

    @property
    def max_charge_w(self) -> float:
        """The most it can be told to charge at (0: it cannot be told to charge)."""

    @property
    def max_discharge_w(self) -> float:
        """The most it can be told to discharge at (0: it cannot be told to discharge)."""

    async def read(self) -> Reading:
        """Every field once (`battery_state` turns it into SoC and power)."""

    async def command(self, power_w: float) -> BatteryCommandResult:
        """Discharge (positive), charge (negative) or idle (0); what it confirmed."""


class BatteryDevice:
    """A profiled battery or hybrid inverter: readings in, one signed power command out."""

    def __init__(self, driver: ProfileDevice) -> None:
        self.driver = driver
        commands = driver.profile.commands
        charge, discharge = commands.charge_power_limit, commands.discharge_power_limit
        self.max_charge_w = 0.0 if charge is None else charge.max
        self.max_discharge_w = 0.0 if discharge is None else discharge.max

    @property
    def id(self) -> str:
        """The device id from the site file."""
        return self.driver.id

    async def read(self) -> Reading:
        """Every field of the battery once."""
        return await self.driver.read()

    async def command(self, power_w: float) -> BatteryCommandResult:
        """Discharge (positive), charge (negative) or idle (0) through the power limits."""
        driver = self.driver
        if not isinstance(driver, ProfileBattery):
            raise DeviceError(f"{driver.profile.name} has no battery power commands")
        charge = max(-power_w, 0.0) if self.max_charge_w > 0 else None
        discharge = max(power_w, 0.0) if self.max_discharge_w > 0 else None
        if (power_w < 0 and charge is None) or (power_w > 0 and discharge is None):
            way = "charge" if power_w < 0 else "discharge"
            raise DeviceError(f"{driver.profile.name} cannot be told to {way}")
        applied = await driver.set_power_limits(charge_w=charge, discharge_w=discharge)
        return BatteryCommandResult(applied.get(CHARGE, 0.0), applied.get(DISCHARGE, 0.0))
