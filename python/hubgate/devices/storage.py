"""The stationary battery as the control loop sees it (PV inverters: `hubgate.devices.pv`).

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

Limits given in percent of a field (SunSpec model 124: InWRte and OutWRte in % of
WChaMax, `percent_of` in the profile) are converted with that field as the device
reports it; their W bound is the device's own. A profile `enable` switch (model
124's StorCtl_Mod) is switched on after the limits are written. Where the profile
has a writable device-side timeout (model 124's InOutWRte_RvrtTms), it holds `lease_s`
(`hubgate.devices.power_setpoints.keep_lease`).
"""

from __future__ import annotations

import math

from hubgate.devices.errors import DeviceError
from hubgate.devices.model import BatteryCommandResult, BatteryReading, Reading
from hubgate.devices.power_setpoints import keep_lease, reference_w, to_unit, to_watts
from hubgate.devices.profile_driver import ProfileBattery, ProfileDevice
from hubgate.modbus.stats import RequestStats
from hubgate.profiles.model import Quantity, Setpoint
from hubgate.profiles.plan import resolve_switch

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


def battery_state(reading: Reading) -> BatteryReading | None:
    """SoC and power from a battery's reading; None when either is missing or not available."""
    soc = reading.get(Quantity.SOC)
    power = battery_power_w(reading)
    if soc is None or power is None:
        return None
    return BatteryReading(at=reading.at, soc_percent=soc, power_w=power)


class BatteryDevice:
    """A profiled battery or hybrid inverter: readings in, one signed power command out."""

    def __init__(self, driver: ProfileDevice, *, lease_s: float | None = None) -> None:
        self.driver = driver
        self.lease_s = lease_s
        """Written to the device's revert timeout, where it has one (None: left as it is)."""
        commands = driver.profile.commands
        charge, discharge = commands.charge_power_limit, commands.discharge_power_limit
        self.max_charge_w = _bound_w(charge)
        self.max_discharge_w = _bound_w(discharge)

    @property
    def id(self) -> str:
        """The device id from the site file."""
        return self.driver.id

    @property
    def link_stats(self) -> RequestStats:
        """The request statistics of its Modbus link."""
        return self.driver.link_stats

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
        return await self._command(driver, charge, discharge)

    async def _command(
        self, driver: ProfileBattery, charge_w: float | None, discharge_w: float | None
    ) -> BatteryCommandResult:
        await keep_lease(driver, self.lease_s)
        commands = driver.profile.commands
        setpoints = (commands.charge_power_limit, commands.discharge_power_limit)
        references = {
            quantity: await reference_w(driver, quantity)
            for quantity in {s.percent_of for s in setpoints if s is not None and s.percent_of}
        }  # each field read once (InWRte and OutWRte are both of WChaMax)
        charge_ref, discharge_ref = (
            None if s is None or s.percent_of is None else references[s.percent_of]
            for s in setpoints
        )
        applied = await driver.set_power_limits(
            charge_w=to_unit(charge_w, charge_ref),
            discharge_w=to_unit(discharge_w, discharge_ref),
        )
        if commands.enable is not None:
            spec = resolve_switch(driver.profile, "enable", commands.enable, await driver.blocks())
            await driver.write(spec, [commands.enable.values["on"]], multiple=False)
        return BatteryCommandResult(
            to_watts(applied.get(CHARGE, 0.0), charge_ref),
            to_watts(applied.get(DISCHARGE, 0.0), discharge_ref),
        )


def _bound_w(setpoint: Setpoint | None) -> float:
    """A setpoint's W bound: 0 without one, unbounded here when in percent of the device's
    own rating (the site file's rating and the device's reference bound it)."""
    if setpoint is None:
        return 0.0
    return math.inf if setpoint.percent_of is not None else setpoint.max
