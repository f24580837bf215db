"""PV curtailment on the wire: the SunSpec model 123 and SMA Sunny Tripower profiles against
fact tables from their public definitions, and `PvDevice` against the simulated inverters.

Fact tables transcribed from (1) the SunSpec Alliance model definitions, sunspec/models at
commit 7abdf8982d5364f8ae916deee18aac86c11be36d, json/model_121.json ("Basic Settings")
and json/model_123.json ("Immediate Controls"): offsets count from the model's ID
register (ID at 0, L at 1), as the profile's block offsets do; (2) SMA's register list
SMA_Modbus-TI-en-28.xlsx, sheet "STP nn000TL-30, PKG 2.83" (in OpenEMS/openems at commit
0e4ea8881f78f46b6a7cd05ce570c35de334c113, io.openems.edge.sma/doc/).
"""

from __future__ import annotations

import pytest
import trio

from hubgate.devices.errors import DeviceError
from hubgate.devices.pv import PvDevice
from hubgate.profiles.model import DataType, Function, Quantity
from hubgate.profiles.plan import timeout_enable
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


SMA = PROFILES["sma-sunny-tripower"]
SMA_STP_30 = {
    # address: (type, format, unit, access), as the sheet prints them
    30231: ("U32", "FIX0", "W", "RO"),  # Maximum active power device
    40016: ("S16", "FIX0", "%", "W"),  # Normalized active power limitation by PV system ctrl
    41193: ("U32", "ENUM", "", "RW"),  # Operating mode for absent active power limitation
    41195: ("U32", "Duration", "s", "RW"),  # Timeout for absent active power limitation
    41197: ("U32", "FIX2", "%", "RW"),  # Fallback act power lmt P in % of WMax for absent ...
}
SMA_ABSENT_LIMITATION = {"Values maintained": 2506, "Use fallback setting": 2507}
"""41193's values."""
TYPES = {"U32": DataType.U32, "S16": DataType.I16}
SCALES = {"FIX0": 1.0, "Duration": 1.0, "FIX2": 0.01, "ENUM": 1.0}


def test_the_sma_profile_is_the_stp_30_sheet() -> None:
    limit = SMA.commands.power_limit
    timeout, fallback = SMA.failsafe.timeout, SMA.failsafe.fallback
    assert limit is not None
    assert timeout is not None
    assert fallback is not None
    rating = SMA.fields[Quantity.INVERTER_MAX_POWER]
    assert limit.percent_of is Quantity.INVERTER_MAX_POWER  # "% of PMAX"
    assert (limit.min, limit.max, limit.readable) == (0, 100, False)  # write-only
    assert (rating.function, rating.unit) == (Function.INPUT, "W")
    assert timeout.enable_value == SMA_ABSENT_LIMITATION["Use fallback setting"]
    registers = {
        rating.address: (rating.type, rating.scale, rating.unit, True),
        limit.address: (limit.type, limit.scale, limit.unit, limit.readable),
        timeout.enable_address: (timeout.enable_type, 1.0, "", True),
        timeout.address: (timeout.type, timeout.scale, timeout.unit, True),
        fallback.address: (fallback.type, fallback.scale, fallback.unit, True),
    }
    assert set(registers) == set(SMA_STP_30)
    for address, (kind, fmt, unit, access) in SMA_STP_30.items():
        got_type, got_scale, got_unit, readable = registers[address]
        assert (got_type, got_scale, readable) == (TYPES[kind], SCALES[fmt], access != "W")
        assert unit in ("", got_unit), address


PMAX_W = 20_000.0


async def test_sma_cap_in_percent_of_pmax_with_its_lease_and_fallback() -> None:
    with trio.fail_after(10):
        async with rig(SMA) as r:
            r.sim.set(Quantity.INVERTER_MAX_POWER, PMAX_W)
            fed = FedDevice(r.sim)
            inverter = PvDevice(r.driver, lease_s=20)
            assert inverter.curtailable
            assert await inverter.curtail(8000.0, 5000.0) == pytest.approx(8000.0)
            assert r.sim.value("commands.power_limit") == 40  # % of PMAX
            assert r.sim.value("failsafe.timeout.enable") == 2507  # use the fallback
            assert r.sim.value("failsafe.timeout") == 20  # the lease
            assert r.sim.value("failsafe.fallback") == pytest.approx(25.0)  # 5 kW of 20
            assert pv_cap_kw(fed) == pytest.approx(8.0)
            r.clock.advance(19)
            assert await inverter.curtail(8100.0, 5000.0) == pytest.approx(8000.0)  # whole %
            r.clock.advance(19)
            assert pv_cap_kw(fed) == pytest.approx(8.0)  # re-sent within the lease
            r.clock.advance(2)  # silent past the lease: the fallback, not full output
            assert pv_cap_kw(fed) == pytest.approx(5.0)
            assert await inverter.curtail(None, 5000.0) is None  # lifted: told 100 %
            assert pv_cap_kw(fed) == pytest.approx(PMAX_W / 1000)
            r.clock.advance(21)  # 100 % is watched by the lease like any cap
            assert pv_cap_kw(fed) == pytest.approx(5.0)
            await inverter.curtail(None, 0.0)  # a zero feed-in contact closed meanwhile
            assert r.sim.value("failsafe.fallback") == 0.0
            r.clock.advance(21)
            assert pv_cap_kw(fed) == 0.0


async def test_sma_settings_lost_on_the_device_are_written_again() -> None:
    """41193-41197 are stored parameters, written where they read otherwise: an inverter
    reset to 'values maintained' or another fallback gets hubgate's back."""
    with trio.fail_after(10):
        async with rig(SMA) as r:
            r.sim.set(Quantity.INVERTER_MAX_POWER, PMAX_W)
            inverter = PvDevice(r.driver, lease_s=20)
            await inverter.curtail(4000.0, None)  # no export limit
            assert r.sim.value("failsafe.fallback") == pytest.approx(100.0)  # no cap
            enable, fallback = timeout_enable(SMA), SMA.failsafe.fallback
            assert enable is not None
            assert fallback is not None
            await r.driver.write_value(enable, 2506, multiple=True)
            await r.driver.write_value(
                await r.driver.resolve("fallback", fallback), 10.0, multiple=True
            )
            await inverter.curtail(4000.0)
            assert r.sim.value("failsafe.timeout.enable") == 2507
            assert r.sim.value("failsafe.fallback") == pytest.approx(100.0)
