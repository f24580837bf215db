"""PV caps for what the site may feed in: `grid.export_limit_kw` and the grid operator's
§9 EEG feed-in contacts (W3 0 %, S2 30 %, S1 60 % of the installed PV power)."""

from __future__ import annotations

import math

import pytest

from hubgate.control.pv_curtailment import (
    PvCurtailment,
    PvUnit,
    fallback_caps_w,
    feed_in_percent_of,
)
from hubgate.profiles.loader import load_named
from hubgate.profiles.model import Quantity

ROOF = PvUnit("roof", 30_000.0, curtailable=True)
CARPORT = PvUnit("carport", 10_000.0, curtailable=True)
OLD = PvUnit("old", 10_000.0, curtailable=False)


def test_no_limit_no_cap() -> None:
    curtailment = PvCurtailment((ROOF,))
    decision = curtailment.decide(grid_import_w=-20_000.0, pv_w={"roof": 25_000.0})
    assert decision.caps_w == {"roof": None}
    assert math.isinf(decision.allowed_export_w)


def test_zero_export_caps_at_what_the_site_uses() -> None:
    curtailment = PvCurtailment((ROOF, OLD), export_limit_w=0.0)
    # the site exports 5 kW: it uses 25 + 5 - 5 = 25 kW... of which the old inverter gives 5
    decision = curtailment.decide(grid_import_w=-5_000.0, pv_w={"roof": 25_000.0, "old": 5_000.0})
    assert decision.caps_w == {"roof": pytest.approx(20_000.0)}
    assert decision.allowed_export_w == 0.0


def test_the_fallback_caps_hold_the_export_limit_with_no_gateway() -> None:
    """What the inverters fall back to when hubgate is gone: the export limit as if the site
    used nothing and the uncappable inverter gave its peak, shared by peak."""
    caps = fallback_caps_w((ROOF, CARPORT, OLD), 14_000.0)
    assert caps == {"roof": pytest.approx(3_000.0), "carport": pytest.approx(1_000.0)}
    assert fallback_caps_w((ROOF, OLD), 0.0) == {"roof": 0.0}  # zero export
    assert fallback_caps_w((ROOF, OLD), math.inf) == {"roof": None}  # no limit: no cap
    assert fallback_caps_w((OLD,), 0.0) == {}


def test_the_caps_share_the_room_by_peak_power() -> None:
    curtailment = PvCurtailment((ROOF, CARPORT), export_limit_w=2_000.0)
    decision = curtailment.decide(
        grid_import_w=-10_000.0, pv_w={"roof": 24_000.0, "carport": 8_000.0}
    )
    # use: 32 - 10 = 22 kW; the PV may give 22 + 2 = 24 kW, 3:1
    assert decision.caps_w == {"roof": pytest.approx(18_000.0), "carport": pytest.approx(6_000.0)}


def test_the_grid_operators_feed_in_contacts_cap_at_a_share_of_the_installed_power() -> None:
    curtailment = PvCurtailment((ROOF, CARPORT))
    decision = curtailment.decide(
        grid_import_w=-30_000.0, pv_w={"roof": 30_000.0, "carport": 10_000.0}, feed_in_percent=30.0
    )
    assert decision.allowed_export_w == pytest.approx(12_000.0)  # 30 % of 40 kW
    # use 10 kW, + 12 kW feed-in
    assert sum(c for c in decision.caps_w.values() if c is not None) == pytest.approx(22_000.0)
    tighter = PvCurtailment((ROOF, CARPORT), export_limit_w=5_000.0)
    assert tighter.allowed_export_w(30.0) == 5_000.0  # the smaller of both
    assert tighter.allowed_export_w(100.0) == 5_000.0


def test_no_cap_where_the_site_uses_more_than_the_pv_can_give() -> None:
    curtailment = PvCurtailment((ROOF,), export_limit_w=0.0)
    decision = curtailment.decide(grid_import_w=40_000.0, pv_w={"roof": 20_000.0})
    assert decision.caps_w == {"roof": None}
    assert decision.spare_w == 0.0


def test_a_battery_charging_more_this_cycle_raises_the_cap() -> None:
    curtailment = PvCurtailment((ROOF,), export_limit_w=0.0)
    decision = curtailment.decide(
        grid_import_w=0.0, pv_w={"roof": 10_000.0}, battery_change_w=4_000.0
    )
    assert decision.caps_w == {"roof": pytest.approx(14_000.0)}


def test_an_inverter_at_its_cap_may_give_more() -> None:
    curtailment = PvCurtailment((ROOF,), export_limit_w=0.0)
    first = curtailment.decide(grid_import_w=-2_000.0, pv_w={"roof": 12_000.0})
    assert first.caps_w == {"roof": pytest.approx(10_000.0)}
    assert first.spare_w == pytest.approx(0.05 * ROOF.peak_w)  # producing above the new cap
    clouded = curtailment.decide(grid_import_w=4_000.0, pv_w={"roof": 6_000.0})
    assert clouded.caps_w == {"roof": pytest.approx(10_000.0)}  # the site uses 10 kW
    assert clouded.spare_w == 0.0  # the PV gives 6 kW: below its cap, nothing to spare


def test_without_a_fresh_grid_meter_the_pv_gives_only_what_may_be_exported() -> None:
    curtailment = PvCurtailment((ROOF, CARPORT), export_limit_w=4_000.0)
    curtailment.decide(grid_import_w=-1_000.0, pv_w={"roof": 9_000.0, "carport": 3_000.0})
    unsure = curtailment.decide(grid_import_w=None, pv_w={"roof": 8_000.0, "carport": 3_000.0})
    assert unsure.caps_w == {"roof": pytest.approx(3_000.0), "carport": pytest.approx(1_000.0)}
    assert "no fresh grid meter" in unsure.reasons[0]


def test_the_relay_profiles_contacts() -> None:
    """grid-operator-14a-relays: W3 (no feed-in) before S2 (30 %) before S1 (60 %)."""
    profile = load_named("grid-operator-14a-relays")
    assert profile.grid_operator is not None
    rule = profile.grid_operator.feed_in_percent
    w3, s2, s1 = Quantity.RELAY_FEED_IN_0, Quantity.RELAY_FEED_IN_30, Quantity.RELAY_FEED_IN_60
    assert feed_in_percent_of({w3: 0.0, s2: 0.0, s1: 0.0}, rule) == 100.0
    assert feed_in_percent_of({w3: 0.0, s2: 0.0, s1: 1.0}, rule) == 60.0
    assert feed_in_percent_of({w3: 0.0, s2: 1.0, s1: 1.0}, rule) == 30.0
    assert feed_in_percent_of({w3: 1.0, s2: 1.0, s1: 0.0}, rule) == 0.0
    assert feed_in_percent_of({w3: None, s2: 0.0, s1: 0.0}, rule) is None


def test_a_closed_feed_in_contact_is_the_fallback_too() -> None:
    """With no gateway the inverters hold what the site may feed in when it last heard: a
    closed §9 contact stays closed for all they know (the export limit alone would let
    the roof feed in 14 kW less the old inverter's 10)."""
    curtailment = PvCurtailment((ROOF, CARPORT, OLD), export_limit_w=14_000.0)
    pv = {"roof": 20_000.0, "carport": 6_000.0, "old": 5_000.0}
    free = curtailment.decide(grid_import_w=30_000.0, pv_w=pv)
    assert free.caps_w == {"roof": None, "carport": None}
    assert free.fallback_w == {"roof": pytest.approx(3_000.0), "carport": pytest.approx(1_000.0)}
    s2 = curtailment.decide(grid_import_w=30_000.0, pv_w=pv, feed_in_percent=30.0)
    assert s2.allowed_export_w == 14_000.0  # 30 % of 50 kW is 15: the export limit binds
    assert s2.fallback_w == free.fallback_w
    w3 = curtailment.decide(grid_import_w=30_000.0, pv_w=pv, feed_in_percent=0.0)
    assert w3.fallback_w == {"roof": 0.0, "carport": 0.0}
    opened = PvCurtailment((ROOF, CARPORT, OLD))  # no export limit: only the contact caps
    assert opened.decide(grid_import_w=0.0, pv_w=pv).fallback_w == {"roof": None, "carport": None}
    s1 = opened.decide(grid_import_w=0.0, pv_w=pv, feed_in_percent=60.0)
    # 60 % of 50 kW, less the old inverter's 10 kW peak, shared 3:1
    assert s1.fallback_w == {"roof": pytest.approx(15_000.0), "carport": pytest.approx(5_000.0)}
