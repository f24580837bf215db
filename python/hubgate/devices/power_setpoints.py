"""What the battery and PV drivers share: setpoints in percent of a device's own rating,
the device-side lease (a revert timeout), and switches written only when they differ.

Limits given in percent of a field (SunSpec model 124's InWRte of WChaMax, model 123's
WMaxLimPct of WMax: `percent_of` in the profile) are converted with that field as the
device reports it. Where the profile has a writable revert timeout, `keep_lease` checks it
before every command and, where it is not the lease (the first command, a device
restarted at its default), writes it and reads it back, after the register that switches
the timeout on where the profile has one (SMA 41193 "use fallback setting"): a gateway that
stops re-sending then leaves the device to revert to its fallback or its own control. These
are stored parameters on some devices (SMA: "must not be changed cyclically"), so nothing
is written that already reads as wanted.
"""

from __future__ import annotations

import math

from hubgate.devices.errors import DeviceError, FailsafeNotAppliedError
from hubgate.devices.profile_driver import ProfileDevice
from hubgate.modbus.codec import FieldError
from hubgate.profiles.model import Quantity, Switch
from hubgate.profiles.plan import RegisterSpec, resolve_switch, timeout_enable


async def reference_w(driver: ProfileDevice, quantity: Quantity) -> float:
    """The W that 100 % of a percent setpoint stands for, as the device reports it now."""
    field = driver.profile.fields[quantity]
    value = await driver.read_value(await driver.resolve(quantity.value, field))
    if not isinstance(value, int | float) or value <= 0:
        raise DeviceError(
            f"{driver.profile.name}: {quantity} reads {value!r}, "
            "so a limit in percent of it cannot be set"
        )
    return float(value)


async def keep_lease(driver: ProfileDevice, lease_s: float | None) -> None:
    """Check the device's revert timeout before a command; where it is not `lease_s`
    (first command, or a device restarted at its default), write it and read it back.
    Nothing to do without a lease or a timeout register."""
    timeout = driver.profile.failsafe.timeout
    if lease_s is None or timeout is None or timeout.address is None:
        return
    enable = timeout_enable(driver.profile)
    if enable is not None and await driver.read_value(enable) != timeout.enable_value:
        await driver.write_value(enable, timeout.enable_value, multiple=False)
    spec = await driver.resolve("timeout", timeout)
    held = await driver.read_value(spec)
    if _holds(held, lease_s):
        return
    if not timeout.writable:
        driver.warn_once("the revert timeout is fixed at %s, not %s s", held, lease_s)
        return
    try:
        await driver.write_value(spec, lease_s, multiple=False)
    except FieldError as exc:
        raise FailsafeNotAppliedError(
            f"{driver.id}: the revert timeout cannot hold {lease_s} s: {exc}"
        ) from exc
    got = await driver.read_value(spec)
    if not _holds(got, lease_s):
        raise FailsafeNotAppliedError(
            f"{driver.id}: wrote {lease_s} s to the revert timeout, read back {got!r}"
        )


async def keep_value(driver: ProfileDevice, spec: RegisterSpec, value: float) -> None:
    """Write `value` where the register reads otherwise (a stored parameter: SMA's
    fallback 41197), and check it read back."""
    held = await driver.read_value(spec)
    if isinstance(held, int | float) and math.isclose(held, value, abs_tol=abs(spec.scale)):
        return
    await driver.write_value(spec, value, multiple=False)
    got = await driver.read_value(spec)
    if not isinstance(got, int | float) or not math.isclose(got, value, abs_tol=abs(spec.scale)):
        raise FailsafeNotAppliedError(f"{driver.id}: wrote {value} to {spec.name}, read {got!r}")


async def switch_to(driver: ProfileDevice, name: str, switch: Switch, position: str) -> None:
    """Put a profile switch (`enable`) in `position`, writing only when it reads otherwise
    (some are stored parameters, not meant to be written every cycle)."""
    spec = resolve_switch(driver.profile, name, switch, await driver.blocks())
    wanted = switch.values[position]
    held = await driver.read_value(spec)
    if isinstance(held, int | float) and int(held) == wanted:
        return
    await driver.write(spec, [wanted], multiple=switch.write == "multiple")


def to_unit(watts: float | None, reference: float | None) -> float | None:
    """W in the setpoint's unit: itself, or percent of the reference."""
    if watts is None or reference is None:
        return watts
    return watts / reference * 100.0


def to_watts(value: float, reference: float | None) -> float:
    """A setpoint value back in W."""
    return value if reference is None else value * reference / 100.0


def _holds(value: object, lease_s: float) -> bool:
    """Whether a revert timeout read back is the lease (whole seconds; 0 would never revert)."""
    return (
        isinstance(value, int | float) and value > 0 and math.isclose(value, lease_s, abs_tol=0.5)
    )
