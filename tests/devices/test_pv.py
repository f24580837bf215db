"""PV curtailment on the wire: the SunSpec model 123 profile against a fact table from the
SunSpec model definitions, and `PvDevice` against the simulated inverter.

Fact table transcribed from the SunSpec Alliance model definitions, sunspec/models at
commit 7abdf8982d5364f8ae916deee18aac86c11be36d, json/model_121.json ("Basic Settings")
and json/model_123.json ("Immediate Controls"): offsets count from the model's ID
register (ID at 0, L at 1), as the profile's block offsets do.
"""

from __future__ import annotations

import pytest
import trio

from hubgate.devices.errors import DeviceError
from hubgate.devices.pv import PvDevice
from hubgate.profiles.model import DataType, Quantity
from hubgate.sim.register_feed import FedDevice, pv_cap_kw
from tests.support.drivers import PROFILES, rig

SUNSPEC_MODELS = {
    # model: (length L, {point: (offset, type, access, scale-factor point or None)})
    121: (
        30,
        {"WMax": (2, "uint16", "R", "WMax_SF"), "WMax_SF": (22, "sunssf", "R", None)},
    ),
    123: (
        24,
        {
            "WMaxLimPct": (5, "uint16", "RW", "WMaxLimPct_SF"),
            "WMaxLimPct_WinTms": (6, "uint16", "RW", None),
            "WMaxLimPct_RvrtTms": (7, "uint16", "RW", None),
            "WMaxLimPct_RmpTms": (8, "uint16", "RW", None),
            "WMaxLim_Ena": (9, "enum16", "RW", None),
            "WMaxLimPct_SF": (23, "sunssf", "R", None),
        },
    ),
}
WMAXLIM_ENA = {"DISABLED": 0, "ENABLED": 1}
"""model_123.json, WMaxLim_Ena symbols."""

PROFILE = PROFILES["sunspec-inverter-controls"]


def test_the_profile_is_the_sunspec_model_123_and_121_layout() -> None:
    blocks = PROFILE.sunspec
    assert blocks is not None
    settings, controls = blocks.blocks["settings"], blocks.blocks["controls"]
    assert (settings.ids, settings.length) == ((121,), SUNSPEC_MODELS[121][0])
    assert (controls.ids, controls.length) == ((123,), SUNSPEC_MODELS[123][0])
    points = SUNSPEC_MODELS[123][1] | SUNSPEC_MODELS[121][1]

    wmax = PROFILE.fields[Quantity.INVERTER_MAX_POWER]
    assert (wmax.block, wmax.address, wmax.type) == ("settings", points["WMax"][0], DataType.U16)
    assert wmax.scale_factor == points["WMax_SF"][0]

    limit = PROFILE.commands.power_limit
    assert limit is not None
    assert (limit.block, limit.address, limit.type) == (
        "controls",
        points["WMaxLimPct"][0],
        DataType.U16,
    )
    assert limit.scale_factor == points["WMaxLimPct_SF"][0]
    assert limit.percent_of is Quantity.INVERTER_MAX_POWER  # "% WMax"
    assert (limit.min, limit.max) == (0, 100)

    enable = PROFILE.commands.enable
    assert enable is not None
    assert (enable.block, enable.address) == ("controls", points["WMaxLim_Ena"][0])
    assert enable.values == {"on": WMAXLIM_ENA["ENABLED"], "off": WMAXLIM_ENA["DISABLED"]}

    timeout = PROFILE.failsafe.timeout
    assert timeout is not None
    assert (timeout.block, timeout.address) == ("controls", points["WMaxLimPct_RvrtTms"][0])
    assert all(points[name][2] == "RW" for name in ("WMaxLimPct", "WMaxLimPct_RvrtTms"))


RATING_W = 5000.0
"""WMax served (its register holds it at the simulated scale factor, 10^-1)."""


async def test_a_cap_in_percent_of_wmax_with_its_lease() -> None:
    with trio.fail_after(10):
        async with rig(PROFILE) as r:
            r.sim.set(Quantity.INVERTER_MAX_POWER, RATING_W)
            fed = FedDevice(r.sim)
            inverter = PvDevice(r.driver, lease_s=20)
            assert inverter.curtailable
            assert await inverter.curtail(2000.0) == pytest.approx(2000.0)
            assert r.sim.value("commands.power_limit") == pytest.approx(40.0)  # % of WMax
            assert r.sim.value("commands.enable") == WMAXLIM_ENA["ENABLED"]
            assert r.sim.value("failsafe.timeout") == 20  # WMaxLimPct_RvrtTms: the lease
            assert pv_cap_kw(fed) == pytest.approx(2.0)
            assert await inverter.curtail(0.0) == 0.0  # zero feed-in, nothing used on site
            assert pv_cap_kw(fed) == 0.0
            assert await inverter.curtail(2e9) == pytest.approx(RATING_W)  # at most 100 %

            await inverter.curtail(2500.0)
            r.clock.advance(19)
            assert pv_cap_kw(fed) == pytest.approx(2.5)
            r.clock.advance(2)  # no re-send within the lease: the inverter reverts
            assert pv_cap_kw(fed) is None
            assert await inverter.curtail(2500.0) == pytest.approx(2500.0)  # a re-send holds
            assert pv_cap_kw(fed) == pytest.approx(2.5)


async def test_lifting_the_cap_switches_the_limit_off() -> None:
    with trio.fail_after(10):
        async with rig(PROFILE) as r:
            r.sim.set(Quantity.INVERTER_MAX_POWER, RATING_W)
            fed = FedDevice(r.sim)
            inverter = PvDevice(r.driver, lease_s=20)
            await inverter.curtail(3000.0)
            assert await inverter.curtail(None) is None
            assert r.sim.value("commands.enable") == WMAXLIM_ENA["DISABLED"]
            assert pv_cap_kw(fed) is None


async def test_an_inverter_that_does_not_report_its_rating_is_not_capped_blindly() -> None:
    with trio.fail_after(10):
        async with rig(PROFILE) as r:
            r.sim.set(Quantity.INVERTER_MAX_POWER, None)  # WMax not implemented
            with pytest.raises(DeviceError, match="inverter_max_power"):
                await PvDevice(r.driver).curtail(3000.0)


async def test_a_read_only_inverter_cannot_be_capped() -> None:
    with trio.fail_after(10):
        async with rig(PROFILES["sunspec-inverter"]) as r:
            inverter = PvDevice(r.driver)
            assert not inverter.curtailable
            with pytest.raises(DeviceError, match="no power_limit command"):
                await inverter.curtail(1000.0)
