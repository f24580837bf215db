"""The fallback currents a site's Modbus chargers hold on their devices, read once
(`hubgate config check --read-fallbacks`): Alfen's safe current, set in ACE Service Installer,
is whatever an installer left there; `config check` counts the value read instead of the
most the device may hold. Nothing is written."""

from __future__ import annotations

import trio

from hubgate._core import HubgateError
from hubgate.config.model import SiteConfig
from hubgate.devices.profile_driver import ProfileCharger, driver_for
from hubgate.modbus.pool import open_modbus_pool
from hubgate.profiles.held import held_by_device
from hubgate.profiles.loader import load_named


async def read_held_fallbacks(
    site: SiteConfig, *, timeout_s: float = 2.0
) -> tuple[dict[str, float], list[str]]:
    """By connector (`charger#connector`), the fallback current its device holds as read;
    and a line per connector whose fallback could not be read (it stays counted at its
    maximum). Each socket of a Modbus charger is the unit after the one before."""
    held: dict[str, float] = {}
    problems: list[str] = []
    async with open_modbus_pool(timeout_s=timeout_s, retries=0) as pool:
        for charger in site.chargers:
            if charger.modbus is None:
                continue
            profile = load_named(charger.modbus.profile)
            if held_by_device(profile) is None:
                continue
            for position, connector in enumerate(charger.connectors):
                name = f"{charger.id}#{connector.id}"
                endpoint = charger.modbus.model_copy(
                    update={"unit": charger.modbus.unit + position}
                )
                driver = driver_for(charger.id, profile, pool.device(endpoint))
                assert isinstance(driver, ProfileCharger)
                why = "it reads no number"
                try:
                    with trio.fail_after(2 * timeout_s):
                        read = await driver.read_held_fallback()
                except (HubgateError, OSError, trio.TooSlowError) as exc:
                    read, why = None, f"{type(exc).__name__}: {exc}"
                if read is None:
                    problems.append(
                        f"{name}: the fallback its device holds could not be read ({why}): "
                        "counted at its maximum"
                    )
                else:
                    held[name] = read.current_a
    return held, problems
