"""Capabilities, clock estimates and provisioning choices, sans-IO."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hubgate.config.model import CapabilityOverride
from hubgate.ocpp.capabilities import (
    Capabilities,
    ClockEstimate,
    on_charger_clock,
    parse_rate_units,
)
from hubgate.ocpp.provisioning import sample_interval_s
from hubgate.ocpp.registry import Admission, Station
from hubgate.ocpp.smart_charging import LeaseMode, lease_mode
from hubgate.ocpp.station_care import StationCare
from hubgate.ocpp.versions import OcppVersion


@pytest.mark.parametrize(
    ("text", "units"),
    [
        ("Current,Power", ("A", "W")),
        ("Current", ("A",)),
        ("power", ("W",)),  # Huawei FusionCharger, lbbrhzn/ocpp#1635
        ("A,W", ("A", "W")),
        ("W", ("W",)),
        ("Power, Current", ("W", "A")),
        ("kW", None),
        ("", None),
        (None, None),
    ],
)
def test_rate_units_as_chargers_write_them(text: str | None, units: tuple[str, ...] | None) -> None:
    assert parse_rate_units(text) == units


def test_amperes_are_preferred_and_the_site_file_wins() -> None:
    both = Capabilities(rate_units=("W", "A"), max_stack_level=3)
    assert both.rate_unit == "A"
    corrected = both.corrected(CapabilityOverride(rate_unit="W", max_stack_level=0))
    assert (corrected.rate_units, corrected.rate_unit, corrected.max_stack_level) == (
        ("W",),
        "W",
        0,
    )
    assert both.corrected(None) is both


def test_capabilities_round_trip_through_json() -> None:
    kept = Capabilities(("W",), 0, 8, 24, True, -420.0, False)
    assert Capabilities.from_json(kept.to_json()) == kept
    assert Capabilities.from_json({"rate_units": ["kW"], "future_key": 1}) == Capabilities()


def test_the_clock_estimate_takes_the_freshest_message() -> None:
    clock = ClockEstimate()
    assert clock.offset_s is None
    arrived = datetime(2026, 11, 25, 12, tzinfo=UTC)
    behind = arrived - timedelta(minutes=7)
    clock.stamped((behind - timedelta(minutes=30)).isoformat(), arrived)  # queued offline
    clock.stamped((behind - timedelta(seconds=2)).isoformat(), arrived)  # slow link
    clock.stamped(behind.isoformat(), arrived)
    clock.stamped("not a time", arrived)
    clock.stamped(None, arrived)
    assert clock.offset_s == pytest.approx(-420)


def test_times_go_out_on_the_chargers_clock_only_when_it_is_off() -> None:
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    assert on_charger_clock(now, Capabilities()) == now
    assert on_charger_clock(now, Capabilities(clock_offset_s=4.0)) == now  # within tolerance
    assert on_charger_clock(now, Capabilities(clock_offset_s=-420)) == now - timedelta(minutes=7)
    assert Capabilities(clock_offset_s=-420).clock_off
    assert not Capabilities(clock_offset_s=3).clock_off
    # once off, right again only well within the tolerance
    assert Capabilities(clock_offset_s=3, clock_was_off=True).clock_off
    assert on_charger_clock(now, Capabilities(clock_offset_s=3, clock_was_off=True)) == (
        now + timedelta(seconds=3)
    )
    assert not Capabilities(clock_offset_s=2, clock_was_off=True).clock_off
    assert "clock_was_off" not in Capabilities(clock_was_off=True).to_json()


def test_a_clock_estimate_near_the_tolerance_keeps_one_lease_shape() -> None:
    """A right clock read through a loaded gateway's delays: its estimate moves between
    4.3 and 5.5 s (seen in the charger zoo at load 20). Counted off once, it stays off
    (a relative lease: right for any clock) until the estimate is well within the
    tolerance, instead of changing its lease's shape, a new lease each time."""
    care = StationCare(Station(Admission("CP", "cp", (OcppVersion.V16,))))
    clock = care.station.clock

    def mode_after(*offsets: float) -> LeaseMode | None:
        for offset in offsets:
            clock.measured(offset)
        return lease_mode(care.capabilities)

    assert mode_after(-4.3) is LeaseMode.LEVELS
    assert mode_after(*[-5.5] * 8) is LeaseMode.RELATIVE
    assert mode_after(*[-4.3] * 8) is LeaseMode.RELATIVE  # was LEVELS: a new lease
    assert mode_after(*[-5.5] * 8, *[-4.3] * 8) is LeaseMode.RELATIVE
    assert mode_after(*[-1.0] * 8) is LeaseMode.LEVELS
    assert mode_after(*[-4.3] * 8) is LeaseMode.LEVELS


@pytest.mark.parametrize(
    ("capabilities", "mode"),
    [
        (Capabilities(), LeaseMode.LEVELS),
        (Capabilities(max_stack_level=8), LeaseMode.LEVELS),
        (Capabilities(max_stack_level=0), LeaseMode.SCHEDULE),  # EVBox, lbbrhzn/ocpp#221
        (Capabilities(honours_valid_to=False), LeaseMode.SCHEDULE),
        (Capabilities(max_stack_level=0, max_periods=1), None),
    ],
)
def test_lease_shape_follows_the_charger(capabilities: Capabilities, mode: LeaseMode) -> None:
    assert lease_mode(capabilities) is mode


def test_a_levels_lease_needs_two_profiles_per_connector_limited() -> None:
    """MaxChargingProfilesInstalled shared by the leases on one charger (two connectors:
    four profiles for levels, two for schedules)."""
    assert lease_mode(Capabilities(max_profiles=4), leases=2) is LeaseMode.LEVELS
    assert lease_mode(Capabilities(max_profiles=3), leases=2) is LeaseMode.SCHEDULE
    assert lease_mode(Capabilities(max_profiles=1)) is LeaseMode.SCHEDULE


@pytest.mark.parametrize(("cycle_s", "interval_s"), [(0.1, 1), (1.0, 5), (1.5, 8), (5, 10)])
def test_sample_interval_follows_the_cycle(cycle_s: float, interval_s: int) -> None:
    assert sample_interval_s(cycle_s) == interval_s


def test_a_boot_starts_the_clock_estimate_over() -> None:
    """A charger stamping messages before it set its clock at boot (1970 stamps before the
    BootNotification's answer, matth-x/MicroOcpp#354) is not held to them afterwards."""
    clock = ClockEstimate()
    arrived = datetime(2026, 11, 25, 12, tzinfo=UTC)
    clock.stamped((arrived + timedelta(seconds=40)).isoformat(), arrived)
    clock.restart()
    assert clock.offset_s is None
    clock.stamped(arrived.isoformat(), arrived)
    assert clock.offset_s == 0
