"""Smart charging: the sans-IO planner, profile payloads, and leases on real charge points."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import trio

from hubgate.ocpp.capabilities import Capabilities, RateUnit, discover
from hubgate.ocpp.composite_check import CompositeSchedule, judge
from hubgate.ocpp.errors import OcppCallError, OcppCallTimeoutError
from hubgate.ocpp.smart_charging import (
    LeasePlanner,
    LeaseSettings,
    ProfileLease,
    Setpoint,
    SmartCharging,
    schedule_limit,
    set_charging_profile,
)
from hubgate.ocpp.validation import Direction, validate
from hubgate.ocpp.versions import OcppVersion
from tests.support.ocpp_listener import V16, V21, V201, Running

SETTINGS = LeaseSettings(
    lease_s=60, renew_before_s=20, deadband_a=0.5, min_increase_interval_s=5, failsafe_current_a=6
)


def test_planner_deadband_rate_limit_and_renewal() -> None:
    planner = LeasePlanner(SETTINGS)
    assert planner.due(Setpoint(16), now=0)
    planner.sent(Setpoint(16), now=0)
    assert not planner.due(Setpoint(16.4), now=1)  # an increase inside the deadband waits
    assert planner.due(Setpoint(15.9), now=1)  # a decrease goes out at once, however small
    assert planner.due(Setpoint(15.5), now=1)
    planner.sent(Setpoint(15.5), now=1)
    assert not planner.due(Setpoint(20), now=3)  # an increase waits for the interval...
    assert planner.due(Setpoint(20), now=5)  # ... from the last increase, not the decrease
    assert planner.due(Setpoint(15.5, phases=1), now=2)  # a phase change goes out at once
    assert not planner.due(Setpoint(15.5), now=40.9)
    assert planner.due(Setpoint(15.5), now=41)  # renewal 20 s before the lease ends
    planner.sent(Setpoint(15.5), now=41)
    assert planner.due(Setpoint(20), now=42)  # a renewal does not hold back an increase
    planner.forget()
    assert planner.due(Setpoint(15.5), now=42)


def test_planner_sends_an_increase_after_a_decrease_at_once() -> None:
    """The allocator raises a setpoint after a decrease only once its EV was seen following
    it or its own change interval passed: the decrease does not hold the raise again here."""
    planner = LeasePlanner(SETTINGS)
    planner.sent(Setpoint(16), now=0)
    planner.sent(Setpoint(10), now=10)  # a decrease
    assert planner.due(Setpoint(16), now=11)
    planner.sent(Setpoint(16), now=11)
    assert not planner.due(Setpoint(20), now=15)  # the next increase: 5 s after this one
    assert planner.due(Setpoint(20), now=16)


@pytest.mark.parametrize(("raised_at", "now"), [(11.4, 11.4 + 5), (0.0, 5.0), (1.0, 5.9)])
def test_planner_due_now_exactly_when_due_in_s_says_0(raised_at: float, now: float) -> None:
    """`due_in_s` says when `due` says yes: at a float boundary they disagreed (11.4 + 5 =
    16.4, but 16.4 - 11.4 < 5: `due` said no while `due_in_s` said 0, so the connector
    took the path of a due setpoint that then sent nothing, `OcppCharger.quiet_for_s`)."""
    planner = LeasePlanner(SETTINGS)
    planner.sent(Setpoint(16), now=raised_at)
    raise_ = Setpoint(20)
    assert planner.due(raise_, now) == (planner.due_in_s(raise_, now) == 0.0)


def test_planner_spread_renews_earlier_within_half_the_margin() -> None:
    for spread, renew_at in ((0.0, 40.0), (0.5, 35.0), (1.0, 30.0)):
        planner = LeasePlanner(SETTINGS, spread=spread)
        planner.sent(Setpoint(16), now=0)
        assert not planner.due(Setpoint(16), now=renew_at - 0.1)
        assert planner.due(Setpoint(16), now=renew_at)
    with pytest.raises(ValueError, match="spread"):
        LeasePlanner(SETTINGS, spread=1.5)


@pytest.mark.parametrize(
    ("setpoint", "unit", "limit"),
    [
        (Setpoint(16), "A", 16.0),
        (Setpoint(7.38), "A", 7.3),
        (Setpoint(-1), "A", 0.0),
        (Setpoint(16), "W", 11040.0),
        (Setpoint(10, phases=1), "W", 2300.0),
        (Setpoint(16, voltage_v=240), "W", 11520.0),
        (Setpoint(16, active_phases=1), "W", 3680.0),  # an EV drawing on one phase of three
    ],
)
def test_schedule_limit_in_the_chargers_unit(
    setpoint: Setpoint, unit: RateUnit, limit: float
) -> None:
    assert schedule_limit(setpoint, unit) == limit


@pytest.mark.parametrize("version", list(OcppVersion))
@pytest.mark.parametrize("unit", ["A", "W"])
def test_profiles_pass_the_version_schema(version: OcppVersion, unit: str) -> None:
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    payload = set_charging_profile(
        version,
        connector_id=0,
        profile_id=7,
        stack_level=1,
        purpose="TxDefaultProfile",
        setpoint=Setpoint(13.37, phases=1),
        unit=unit,  # type: ignore[arg-type]
        now=now,
        valid_to=now,
        fallback=(60, 6),
        offline_s=59.5 if version is V21 else None,
    )
    validate(version, "SetChargingProfile", Direction.REQUEST, payload)
    if version is V21:
        assert payload["chargingProfile"]["maxOfflineDuration"] == 60


@pytest.mark.parametrize("version", [V16, V201])
def test_an_offline_duration_is_for_2_1_only(version: OcppVersion) -> None:
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    with pytest.raises(ValueError, match=r"2\.1"):
        set_charging_profile(
            version,
            connector_id=0,
            profile_id=7,
            stack_level=1,
            purpose="TxDefaultProfile",
            setpoint=Setpoint(16),
            unit="A",
            now=now,
            valid_to=now,
            offline_s=60,
        )


async def test_lease_on_a_16_charger_falls_back_by_itself(server: Running) -> None:
    # CP16's renewals come due 1.53 s into a 3 s lease (its spread is 0.94 of half the
    # 1 s margin): the deadband check right after the first limit has room under load
    settings = LeaseSettings(lease_s=3.0, renew_before_s=1.0, failsafe_current_a=6)
    with trio.fail_after(15):
        cp = await server.connect("CP16", V16)
        try:
            session = await server.session_of("CP16")
            capabilities = await discover(session)
            assert capabilities.rate_unit == "A"
            lease = ProfileLease(session, settings=settings, capabilities=capabilities)
            assert await lease.apply(Setpoint(16))
            base, limit = (p for a, p in cp.cp.received if a == "SetChargingProfile")
            assert base["charging_profile_purpose"] == "ChargePointMaxProfile"
            assert (base["stack_level"], "valid_to" in base) == (0, False)
            assert float(base["charging_schedule"]["charging_schedule_period"][0]["limit"]) == 6
            assert limit["stack_level"] == 1
            assert "valid_to" in limit
            assert await lease.composite_limit() == 16
            assert (await lease.verify()).following is True
            assert not await lease.apply(Setpoint(16.2))  # deadband: nothing sent
            await trio.sleep(1.6)
            assert await lease.apply(Setpoint(16))  # renewed before expiry
            assert await lease.composite_limit() == 16
            await trio.sleep(3.1)  # hubgate "gone": no renewal
            assert await lease.composite_limit() == 6
        finally:
            await trio.to_thread.run_sync(cp.stop)


async def test_rejected_purpose_falls_back_to_tx_default_in_watts_on_201(server: Running) -> None:
    with trio.fail_after(15):
        cs = await server.connect("CP201", V201)
        try:
            cs.cp.rejected_purposes.add("ChargingStationMaxProfile")
            session = await server.session_of("CP201")
            cs.cp.quirks.rate_units = ("A", "W")
            assert (await discover(session)).rate_unit == "A"  # "A,W": amperes
            lease = ProfileLease(session, settings=SETTINGS, capabilities=Capabilities(("W",)))
            assert await lease.apply(Setpoint(10, phases=1))
            assert lease.purpose == "TxDefaultProfile"
            purposes = [
                p["charging_profile_purpose"]
                for a, p in cs.cp.received
                if a == "SetChargingProfile"
            ]
            assert purposes == ["ChargingStationMaxProfile", "TxDefaultProfile", "TxDefaultProfile"]
            installed = cs.cp.profiles[-1]["charging_schedule"][0]
            assert installed["charging_rate_unit"] == "W"
            assert installed["charging_schedule_period"][0]["number_phases"] == 1
            assert await lease.composite_limit() == 2300.0
            cs.cp.rejected_purposes.add("TxDefaultProfile")
            lease2 = ProfileLease(session, connector_id=1, settings=SETTINGS)
            with pytest.raises(OcppCallError):
                await lease2.apply(Setpoint(10))
        finally:
            await trio.to_thread.run_sync(cs.stop)


async def test_site_wide_leases_skip_absent_chargers_and_restart_on_reconnect(
    server: Running,
) -> None:
    smart = SmartCharging(server.registry, SETTINGS)
    with trio.fail_after(20):
        cp = await server.connect("CP16", V16)
        cs = await server.connect("CP201", V201)
        try:
            first = await server.session_of("CP16")
            await server.session_of("CP201")
            setpoints = {"CP16": Setpoint(20), "CP201": Setpoint(8, phases=1), "CP21": Setpoint(10)}
            assert await smart.apply(setpoints) == {"CP16": True, "CP201": True}
            assert await smart.apply(setpoints) == {"CP16": False, "CP201": False}
            assert len(cs.cp.profiles) == 2
            await trio.to_thread.run_sync(cp.stop)
            cp = await server.connect("CP16", V16)
            await server.session_of("CP16", replacing=first)
            assert await smart.apply(setpoints) == {"CP16": True, "CP201": False}
            assert [p["stack_level"] for a, p in cp.cp.received if a == "SetChargingProfile"] == [
                0,
                1,
            ]
        finally:
            await trio.to_thread.run_sync(cp.stop)
            await trio.to_thread.run_sync(cs.stop)


async def test_lease_on_a_21_station(server: Running) -> None:
    with trio.fail_after(20):
        cs = await server.connect("CP21", V21)
        try:
            session = await server.session_of("CP21")
            lease = ProfileLease(session, settings=SETTINGS)
            assert await lease.apply(Setpoint(25))
            purposes = {p["charging_profile_purpose"] for a, p in cs.cp.received}
            assert purposes == {"ChargingStationMaxProfile"}
            # the limit also lapses once the station has lost hubgate for the lease's
            # length, on its own count (clock-independent); the base never does
            base, limit = (p for a, p in cs.cp.received if a == "SetChargingProfile")
            assert "max_offline_duration" not in base
            assert limit["max_offline_duration"] == SETTINGS.lease_s
            assert await lease.composite_limit() == 25
            # The package's 2.1 station sends no CallError for an action it lacks
            # (protocols.md §1.4): our call times out instead of hanging.
            with pytest.raises(OcppCallTimeoutError):
                await session.call("Reset", {"type": "Immediate"}, timeout_s=0.3)
        finally:
            await trio.to_thread.run_sync(cs.stop)


async def test_verify_catches_a_charger_that_accepts_but_ignores(server: Running) -> None:
    with trio.fail_after(15):
        cs = await server.connect("CP201", V201)
        try:
            lease = ProfileLease(await server.session_of("CP201"), settings=SETTINGS)
            assert (await lease.verify()).following is None  # nothing sent yet
            assert await lease.apply(Setpoint(16))
            verification = await lease.verify()
            assert (verification.following, verification.lapses) == (True, True)
            cs.cp.ignore_profiles = True
            assert await lease.apply(Setpoint(10))  # a decrease goes out at once...
            verification = await lease.verify()  # ...but the charger still applies 16 A
            assert verification.following is False
            assert verification.evidence == "applies 16 A where 10 A was set"
        finally:
            await trio.to_thread.run_sync(cs.stop)


async def test_each_connector_leases_with_its_own_profile_ids(server: Running) -> None:
    """A charger replaces a stored profile that has a new profile's id whatever its connector
    (1.6 SetChargingProfile, 2.0.1 K01.FR.05): with shared ids the limit sent to connector 2
    removed connector 1's, which then ran at its maximum (the depot demo's "not following")."""
    with trio.fail_after(15):
        cp = await server.connect("CP16", V16)
        try:
            session = await server.session_of("CP16")
            capabilities = await discover(session)
            for connector_id, amps in ((1, 10.0), (2, 20.0)):
                lease = ProfileLease(
                    session, connector_id=connector_id, settings=SETTINGS, capabilities=capabilities
                )
                assert await lease.apply(Setpoint(amps))
            sent = [
                p["charging_profile_id"] for a, p in cp.cp.received if a == "SetChargingProfile"
            ]
            assert len(sent) == 4  # connector 1's base and limit, then connector 2's
            assert len(set(sent)) == 4, sent
        finally:
            await trio.to_thread.run_sync(cp.stop)


END = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
"""A lease's end on the charger's clock (`judge` cases)."""


@pytest.mark.parametrize(
    ("read_at_s", "periods", "sent_a", "verdict"),
    [
        # read while the lease runs: now, and just after its end
        (-30, ((0, 10), (32, 6)), 10, (True, True, False)),
        (-30, ((0, 10),), 10, (True, False, False)),
        (-30, ((0, 16),), 10, (False, None, False)),
        (-30, ((0, 6),), 6, (True, None, False)),  # at the failsafe: no lapse to see
        # read after its end (a renewal came late): the limit now is the evidence
        (30, ((0, 6),), 0, (None, True, True)),
        (30, ((0, 0),), 0, (True, False, False)),
        (30, ((0, 32),), 10, (False, None, True)),
        (30, ((0, 6),), 6, (None, None, True)),
        # at its end, by the charger's clock a second ahead (within the tolerance)
        (-1, ((0, 6),), 0, (None, True, True)),
        (-1, ((0, 0), (1, 6)), 0, (True, True, False)),
    ],
)
def test_a_composite_schedule_judged(
    read_at_s: float,
    periods: tuple[tuple[float, float], ...],
    sent_a: float,
    verdict: tuple[bool | None, bool | None, bool],
) -> None:
    start = END + timedelta(seconds=read_at_s)
    schedule = CompositeSchedule(start, "A", periods, 90.0)
    judged = judge(schedule, sent_a, 6.0, END)
    assert (judged.following, judged.lapses, judged.late) == verdict, judged.evidence


async def test_a_watt_chargers_failsafe_profile_holds_the_failsafe_current_in_its_terms(
    server: Running,
) -> None:
    """The base profile carries the failsafe as the lease's own fallback and its check count
    it: a DC charger's as DC power (the zoo's DC chargers got 4,140 W, 6 A x 3 x 230 V, where
    the lease meant 3,893.4 W, and past a lapse were flagged 'not following'); a watt
    charger whose EV draws on one phase gets it again as 6 A on that phase (1,380 W, not
    4,140 W: 18 A there)."""
    settings = LeaseSettings(lease_s=3.0, renew_before_s=1.0, failsafe_current_a=6)
    with trio.fail_after(15):
        cs = await server.connect("CP201", V201)
        try:
            cs.cp.quirks.rate_units = ("W",)
            session = await server.session_of("CP201")
            lease = ProfileLease(session, settings=settings, capabilities=Capabilities(("W",)))
            dc = Setpoint(6, dc_w_per_a=648.9)  # 0.95 x 0.99 x 3 x 230 V
            await lease.install_base(dc)
            assert await lease.composite_limit() == 3893.4
            assert await lease.apply(replace(dc, current_a=20))
            assert await lease.composite_limit() == 12978.0
            await trio.sleep(3.1)  # no renewal: the lease lapses to the base
            verification = await lease.verify()
            assert (verification.following, verification.lapses) == (None, True), verification
            ac = ProfileLease(
                session, connector_id=1, settings=settings, capabilities=Capabilities(("W",))
            )
            await ac.install_base(Setpoint(6))
            assert await ac.apply(Setpoint(10, active_phases=1))
            bases = [
                p["charging_schedule"][0]["charging_schedule_period"][0]["limit"]
                for a, p in cs.cp.received
                if a == "SetChargingProfile" and p["id"] == ac.base_profile_id
            ]
            assert bases == [4140.0, 1380.0]
        finally:
            await trio.to_thread.run_sync(cs.stop)
