"""A PV inverter as the control loop sees it: its output, and a cap on it where the profile
has a power limit.

    inverter = PvDevice(driver_for("pv-1", load_named("sunspec-inverter-controls"), link))
    produced = pv_power_w(await inverter.read())     # W
    await inverter.curtail(12_000)                   # at most 12 kW; None lifts the cap

The cap is the profile's `power_limit` setpoint (SunSpec model 123's WMaxLimPct in % of
121's WMax, SMA's 40016 in % of its maximum active power; `percent_of` converts it with the
rating the device reports), rounded down to its step, between 0 and its maximum; a profile
`enable` switch (WMaxLim_Ena) is switched on after it, and off to lift the cap (a profile
without one is told its maximum). The device-side lease (WMaxLimPct_RvrtTms, SMA 41195)
holds `lease_s` while the limit is written (`hubgate.devices.power_setpoints.keep_lease`):
a gateway that stops re-sending leaves the inverter to its fallback where the profile
has a writable one (SMA 41197: each command's `fallback_w`, the cap that holds what the
site may feed in with no gateway, in % of the same rating; no cap where None), else to
its own control (SunSpec 123 reverts to full output). A profile without an enable switch
is told its maximum to lift the cap, which its lease watches like any cap: the gateway
re-sends it as it re-sends caps.
"""

from __future__ import annotations

import math

from hubgate.devices.errors import DeviceError
from hubgate.devices.model import Reading
from hubgate.devices.power_setpoints import (
    keep_lease,
    keep_value,
    reference_w,
    switch_to,
    to_unit,
    to_watts,
)
from hubgate.devices.profile_driver import ProfileDevice
from hubgate.modbus.stats import RequestStats
from hubgate.profiles.model import Quantity, Setpoint, Unit


def pv_power_w(reading: Reading) -> float | None:
    """A PV inverter's output: its `pv_power`, else its AC `power_total` (negative when
    producing; a hybrid inverter's `power_total` may be its grid sensor, so it comes second)."""
    pv = reading.get(Quantity.PV_POWER)
    if pv is not None:
        return pv
    total = reading.get(Quantity.POWER_TOTAL)
    return None if total is None else max(-total, 0.0)


class PvDevice:
    """A profiled PV inverter: readings in; a cap on its output out, where it has one."""

    def __init__(self, driver: ProfileDevice, *, lease_s: float | None = None) -> None:
        self.driver = driver
        self.lease_s = lease_s
        """Written to the device's revert timeout with the limit (None: left)."""

    @property
    def id(self) -> str:
        """The device id from the site file."""
        return self.driver.id

    @property
    def link_stats(self) -> RequestStats:
        """The request statistics of its Modbus link."""
        return self.driver.link_stats

    @property
    def curtailable(self) -> bool:
        """Whether its profile has a power limit to cap the output with."""
        return self.driver.profile.commands.power_limit is not None

    async def read(self) -> Reading:
        """Every field of the inverter once."""
        return await self.driver.read()

    async def curtail(self, power_w: float | None, fallback_w: float | None = None) -> float | None:
        """Cap the output at `power_w` (None: lift the cap), with `fallback_w` the cap once
        the lease ran out where the fallback is writable (None: no cap); the cap read back,
        in W (None once lifted)."""
        driver = self.driver
        commands = driver.profile.commands
        setpoint = commands.power_limit
        if setpoint is None:
            raise DeviceError(f"{driver.profile.name} has no power_limit command")
        enable = commands.enable
        if power_w is None and enable is not None:
            await switch_to(driver, "enable", enable, "off")
            return None
        reference = (
            None if setpoint.percent_of is None else await reference_w(driver, setpoint.percent_of)
        )
        await keep_lease(driver, self.lease_s)
        await self._keep_fallback(reference, fallback_w)
        wanted = to_unit(power_w, reference)
        value = setpoint.max if wanted is None else _on_step(setpoint, wanted)
        spec = await driver.resolve("power_limit", setpoint)
        await driver.write_value(spec, value, multiple=setpoint.write == "multiple")
        if enable is not None:
            await switch_to(driver, "enable", enable, "on")
        read = await driver.read_value(spec) if setpoint.readable else value
        applied = float(read) if isinstance(read, int | float) else value
        return None if power_w is None else to_watts(applied, reference)

    async def _keep_fallback(self, reference: float | None, fallback_w: float | None) -> None:
        """Write the fallback cap where a lease is kept and the device has a writable
        fallback in % of the rating the cap refers to (a stored parameter: written only
        when it reads otherwise)."""
        fallback = self.driver.profile.failsafe.fallback
        if self.lease_s is None or fallback is None or fallback.address is None:
            return
        if not fallback.writable or fallback.unit is not Unit.PERCENT or reference is None:
            return
        percent = 100.0 if fallback_w is None else fallback_w / reference * 100.0
        spec = await self.driver.resolve("fallback", fallback)
        await keep_value(self.driver, spec, min(max(percent, 0.0), 100.0))


def _on_step(setpoint: Setpoint, value: float) -> float:
    """`value` between 0 and the setpoint's max, rounded down to its step."""
    value = min(max(value, 0.0), setpoint.max)
    if setpoint.step is not None:
        value = round(math.floor(value / setpoint.step + 1e-9) * setpoint.step, 9)
    return value
