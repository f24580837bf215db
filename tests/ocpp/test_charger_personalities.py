"""Real chargers' quirks, each from a public user report, against an independent charge
point (the `ocpp` package's, `ocpp_peers.Quirks`): hubgate discovers them, provisions,
adapts its leases and catches the charger that does not follow."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trio
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from hubgate.config.model import CapabilityOverride, DcConnector
from hubgate.ocpp.charger_info import charger_info
from hubgate.ocpp.device import OcppCharger
from hubgate.ocpp.smart_charging import LeaseMode, LeaseSettings
from hubgate.ocpp.station_care import CapabilityStore, StationCare
from hubgate.ocpp.versions import OcppVersion
from tests.support.charge_points import ChargePointThread, Quirks
from tests.support.ocpp_listener import V16, V201, Running
from tests.support.wait import wait_until

SETTINGS = LeaseSettings(
    lease_s=60,
    renew_before_s=20,
    min_increase_interval_s=0,
    verify_after_s=0,
    settle_s=0,
    overdraw_for_s=0,
)
IDENTITY = {V16: "CP16", V201: "CP201"}


@dataclass
class Driven:
    """A peer with quirks and the hubgate charger driving it."""

    peer: ChargePointThread
    charger: OcppCharger
    care: StationCare

    @property
    def cp(self) -> Any:
        return self.peer.cp

    def sent_profiles(self) -> list[dict[str, Any]]:
        return [p for a, p in self.cp.received if a == "SetChargingProfile"]


@asynccontextmanager
async def driven(
    server: Running,
    version: OcppVersion,
    quirks: Quirks,
    *,
    override: CapabilityOverride | None = None,
    store: CapabilityStore | None = None,
    stamped: bool = True,
) -> AsyncIterator[Driven]:
    """Connect a peer with `quirks`, settle it as the gateway does (after its
    BootNotification, `boot`; its upkeep is the test's to run), configure the failsafe and
    set 16 A on three phases."""
    identity = IDENTITY[version]
    peer = await server.connect(identity, version)
    peer.cp.quirks = quirks
    try:
        station = server.registry.get(identity)
        assert station is not None
        care = StationCare(station, override=override, store=store, sample_interval_s=5)
        charger = OcppCharger(station, settings=SETTINGS, care=care)
        session = await server.session_of(identity)
        await boot(peer, version, stamped=stamped)
        await care.settle(session)
        await charger.configure_failsafe(60, 6)
        await charger.set_limit(16, 3)
        yield Driven(peer, charger, care)
    finally:
        await trio.to_thread.run_sync(peer.stop)


async def boot(peer: ChargePointThread, version: OcppVersion, *, stamped: bool = True) -> None:
    """BootNotification, then the connector's status stamped on the peer's clock, as a
    charger does after it boots (1.6: unless not `stamped`, its timestamp is optional)."""
    stamp = peer.cp.now().isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if version is V16:
        requests = [
            call16.BootNotification(charge_point_model="M", charge_point_vendor="V"),
            call16.StatusNotification(
                connector_id=1,
                error_code="NoError",
                status="Available",
                timestamp=stamp if stamped else None,
            ),
        ]
    else:
        requests = [
            call201.BootNotification(
                charging_station={"model": "M", "vendor_name": "V"}, reason="PowerUp"
            ),
            call201.StatusNotification(
                timestamp=stamp, connector_status="Available", evse_id=1, connector_id=1
            ),
        ]
    for request in requests:
        await trio.to_thread.run_sync(peer.call, request)


@pytest.mark.parametrize("version", [V16, V201])
async def test_a_watt_only_charger_gets_watts(server: Running, version: OcppVersion) -> None:
    """Huawei FusionCharger reports "power" only (lbbrhzn/ocpp#1635); 2.0.1 stations with
    RateUnit W reject amperes (lbbrhzn/ocpp#2134)."""
    with trio.fail_after(20):
        async with driven(server, version, Quirks(rate_units=("W",))) as d:
            assert d.care.capabilities.rate_units == ("W",)
            limit = d.sent_profiles()[-1]
            schedule = limit["charging_schedule"]
            schedule = schedule[0] if isinstance(schedule, list) else schedule
            assert schedule["charging_rate_unit"] == "W"
            assert schedule["charging_schedule_period"][0]["limit"] == 16 * 230 * 3
            await d.charger.upkeep()
            assert d.charger.limit_check.following is True


async def test_watts_are_for_the_voltage_measured_and_the_phases_drawn(server: Running) -> None:
    """A watt-only charger's limit is the allocator's amperes per phase times the voltage it
    measures and the phases its EV draws on: a one-phase EV on a three-phase setpoint at
    240 V gets 10 A x 240 V x 1, not x 3 (three times its share on its phase)."""
    with trio.fail_after(20):
        async with driven(server, V16, Quirks(rate_units=("W",))) as d:
            voltages = [("Voltage", f"{p}-N", "240") for p in ("L1", "L2", "L3")]
            currents = [("Current.Import", "L1", "15.8"), ("Current.Import", "L2", "0")]
            await meter_values(d.peer, [*voltages, *currents, ("Current.Import", "L3", "0")])
            await d.charger.set_limit(10, 3)
            schedule = d.sent_profiles()[-1]["charging_schedule"]
            assert schedule["charging_schedule_period"][0]["limit"] == 10 * 240


async def test_a_charger_lying_about_its_unit_is_corrected_by_the_site_file(
    server: Running,
) -> None:
    """The HomeCharge box says "Current,Power" and takes only W (evcc-io/evcc#9838): every
    ampere profile is refused, so it is not following until the site file says W."""
    liar = Quirks(rate_units=("W",), reported_units=("A", "W"))
    with trio.fail_after(20):
        identity = IDENTITY[V16]
        peer = await server.connect(identity, V16)
        peer.cp.quirks = liar
        try:
            station = server.registry.get(identity)
            assert station is not None
            care = StationCare(station)
            charger = OcppCharger(station, settings=SETTINGS, care=care)
            assert await care.prepare(await server.session_of(identity))
            with pytest.raises(Exception, match="Rejected"):
                await charger.set_limit(16, 3)
            check = charger.limit_check
            assert check.following is False
            assert "refuses every charging profile purpose" in check.evidence
        finally:
            await trio.to_thread.run_sync(peer.stop)
        async with driven(server, V16, liar, override=CapabilityOverride(rate_unit="W")) as d:
            assert d.care.source == "reported + site file"
            await d.charger.upkeep()
            assert d.charger.limit_check.following is True


@pytest.mark.parametrize("version", [V16, V201])
async def test_one_stack_level_gets_a_lease_in_the_schedule(
    server: Running, version: OcppVersion
) -> None:
    """EVBox Elvi: ChargeProfileMaxStackLevel 0 (lbbrhzn/ocpp#221): no level above the
    base, so the lease is one profile whose schedule falls to the failsafe by itself."""
    with trio.fail_after(20):
        async with driven(server, version, Quirks(max_stack_level=0)) as d:
            assert d.care.capabilities.max_stack_level == 0
            assert d.charger.lease is not None
            assert d.charger.lease.mode is LeaseMode.SCHEDULE
            profile = d.sent_profiles()[-1]
            assert profile["stack_level"] == 0
            assert "valid_to" not in profile
            schedule = profile["charging_schedule"]
            schedule = schedule[0] if isinstance(schedule, list) else schedule
            limits = [p["limit"] for p in schedule["charging_schedule_period"]]
            assert limits == [16, 6]
            await d.charger.upkeep()
            verification = d.charger.verification
            assert verification is not None
            assert (verification.following, verification.lapses) == (True, True)


@pytest.mark.parametrize("version", [V16, V201])
async def test_a_charger_holding_one_profile_gets_a_lease_in_the_schedule(
    server: Running, version: OcppVersion
) -> None:
    """MaxChargingProfilesInstalled (SmartChargingCtrlr.Entries) 1: a charger refuses a
    profile more than it holds (1.6 §3.13.5; EVerest libocpp validate_profile), so the
    base and limit profiles of a levels lease do not both fit: one schedule lease does."""
    with trio.fail_after(20):
        async with driven(server, version, Quirks(max_profiles=1)) as d:
            assert d.care.capabilities.max_profiles == 1
            assert d.charger.lease is not None
            assert d.charger.lease.mode is LeaseMode.SCHEDULE
            assert len(d.cp.profiles) == 1
            await d.charger.upkeep()
            assert d.charger.limit_check.following is True
            verification = d.charger.verification
            assert verification is not None
            assert verification.lapses is True


async def test_a_charger_keeping_profiles_past_valid_to_gets_a_schedule_lease(
    server: Running,
) -> None:
    """The composite schedule shows the limit held beyond the lease's validTo: the lease
    moves into the schedule, and the old limit profile is cleared."""
    with trio.fail_after(20):
        async with driven(server, V16, Quirks(ignore_valid_to=True)) as d:
            assert d.charger.lease is not None
            assert d.charger.lease.mode is LeaseMode.LEVELS
            await d.charger.upkeep()  # verifies: keeps 16 A after the lease ends
            verification = d.charger.verification
            assert verification is not None
            assert verification.lapses is False
            assert "after the lease ends" in verification.evidence
            assert d.care.capabilities.honours_valid_to is False
            await d.charger.heartbeat()  # the renewal changes the lease's shape...
            await d.charger.upkeep()  # ...and it is checked again
            assert d.charger.lease.mode is LeaseMode.SCHEDULE
            cleared = await trio.to_thread.run_sync(d.cp.wait_received, "ClearChargingProfile", 1)
            assert cleared[0]["id"] == d.charger.lease.limit_profile_id
            verification = d.charger.verification
            assert verification is not None
            assert (verification.following, verification.lapses) == (True, True)


async def test_an_accepting_liar_is_not_following(server: Running) -> None:
    """go-e answers Accepted and applies nothing (goecharger/go-eCharger-API-v2#249, #105);
    its composite schedule shows its own 32 A."""
    with trio.fail_after(20):
        quirks = Quirks(ignore_profiles=True, default_limit=32)
        async with driven(server, V201, quirks) as d:
            await d.charger.upkeep()
            check = d.charger.limit_check
            assert check.following is False
            assert check.evidence == "applies 32 A where 16 A was set"


async def test_a_liar_is_checked_again_after_a_back_off_not_with_every_lease(
    server: Running,
) -> None:
    """Each new limit, renewal or failsafe of the liar above was a lease to check soon: a
    GetCompositeSchedule per lease, the same answer each time. Found not following, it is
    checked again after a back-off that doubles (`LeaseSettings.recheck_after_s`); a
    reconnection is checked soon, as any."""
    assert [SETTINGS.recheck_after_s(n) for n in (1, 2, 3, 5, 9)] == [30, 60, 120, 300, 300]
    with trio.fail_after(20):
        quirks = Quirks(ignore_profiles=True, default_limit=32)
        async with driven(server, V201, quirks) as d:

            def checks() -> int:
                return int(d.cp.composites_asked)

            await d.charger.upkeep()
            assert (checks(), d.charger.limit_check.following) == (1, False)
            for limit in (15, 14, 13, 12):  # new limits, then a new failsafe: a new lease
                await d.charger.set_limit(limit, 3)
                await d.charger.upkeep()
            await d.charger.configure_failsafe(60, 5)
            await d.charger.set_limit(11, 3)
            await d.charger.upkeep()
            assert (checks(), d.charger.limit_check.following) == (1, False)


async def test_a_charger_drawing_over_its_limit_is_caught(server: Running) -> None:
    """A charger whose schedule says 16 A but whose EV draws 32 A (SteVe users see an
    accepted profile and another current, steve-community/steve#1192)."""
    with trio.fail_after(20):
        async with driven(server, V16, Quirks()) as d:
            await d.charger.upkeep()
            assert d.charger.limit_check.following is True
            await meter_values(d.peer, [("Current.Import", p, "32") for p in ("L1", "L2", "L3")])
            await d.charger.read()
            check = d.charger.limit_check
            assert check.following is False
            assert check.evidence.startswith("draws 32.0 A under a limit of 16 A")


async def test_drawing_the_failsafe_after_a_late_renewal_is_no_fault(server: Running) -> None:
    """A lease that ran out before hubgate renewed it (a loaded gateway) leaves the charger
    at its failsafe, and its EV draws 6 A under hubgate's 0 A: that is the lease working,
    not a charger ignoring its limit (the charger zoo under load had a watt-only charger
    "not following" from this). The same draw while the lease runs is caught."""
    currents = [("Current.Import", p, "6") for p in ("L1", "L2", "L3")]
    with trio.fail_after(20):
        async with driven(server, V16, Quirks()) as d:
            await d.charger.configure_failsafe(1, 6)  # a one-second lease
            await d.charger.set_limit(0, 3)
            await trio.sleep(1.2)  # not renewed: it has run out
            await meter_values(d.peer, currents)
            await d.charger.read()
            assert d.charger.limit_check.following is not False, d.charger.limit_check.evidence
            await d.charger.heartbeat()  # renewed: 0 A again (SETTINGS: no time to follow)
            await meter_values(d.peer, currents)
            await d.charger.read()
            check = d.charger.limit_check
            assert check.following is False
            assert check.evidence.startswith("draws 6.0 A under a limit of 0 A")


@pytest.mark.parametrize("version", [V16, V201])
async def test_a_clock_seven_minutes_behind_is_measured(
    server: Running, version: OcppVersion
) -> None:
    """A charger on its own clock (NTP overriding the CSMS's time, Tinkerforge/esp32-firmware
    #317): 1.6 shows its clock in its timestamps, 2.0.1 in ClockCtrlr.DateTime; it gets a
    lease that does not read it (below). Not measured (as if hubgate used its own clock),
    its schedules in times of day still apply now: they start an hour back (a minute back
    would be 6 minutes in its future, with nothing in force, not even the failsafe: it
    would charge at its own 32 A)."""
    behind = Quirks(clock_offset_s=-420, default_limit=32)
    with trio.fail_after(20):
        async with driven(server, version, behind) as d:
            offset = d.care.capabilities.clock_offset_s
            assert offset is not None
            assert offset == pytest.approx(-420, abs=2)
            lease = d.charger.lease
            assert lease is not None
            assert lease.mode is LeaseMode.RELATIVE
            assert await lease.composite_limit() == 16
        override = CapabilityOverride(clock_offset_s=0)  # as if hubgate used its own clock
        async with driven(server, version, behind, override=override) as d:
            assert d.charger.lease is not None
            assert d.charger.lease.mode is LeaseMode.LEVELS
            assert await d.charger.lease.composite_limit() == 16


async def start_transaction(peer: ChargePointThread, version: OcppVersion) -> None:
    """A transaction starts at the peer now, stamped on its clock."""
    peer.cp.transaction_started = started = peer.cp.now()
    stamp = started.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if version is V16:
        request: Any = call16.StartTransaction(
            connector_id=1, id_tag="TAG", meter_start=0, timestamp=stamp
        )
    else:
        request = call201.TransactionEvent(
            event_type="Started",
            timestamp=stamp,
            trigger_reason="Authorized",
            seq_no=0,
            transaction_info={"transaction_id": "tx-1"},
            evse={"id": 1, "connector_id": 1},
            id_token={"id_token": "TAG", "type": "ISO14443"},
        )
    await trio.to_thread.run_sync(peer.call, request)


@pytest.mark.parametrize("version", [V16, V201])
async def test_a_clock_seven_minutes_off_gets_a_lease_that_never_reads_it(
    server: Running, version: OcppVersion
) -> None:
    """A charger whose clock is off (NTP overriding the CSMS's time and back,
    Tinkerforge/esp32-firmware#317) gets a relative lease: a Relative TxDefaultProfile with
    no time of day in it, its failsafe period `lease_s` after now counted from its
    transaction's start, on the charger's own count. So the lease holds whatever its clock
    says: also with the offset measured wrong (here the site file says 7 minutes behind,
    it is 7 minutes ahead), where a lease in times of day would have ended 14 minutes
    before it was sent (its failsafe at once) or outlast hubgate by as much."""
    ahead = Quirks(clock_offset_s=420, default_limit=32)
    wrong = CapabilityOverride(clock_offset_s=-420)
    with trio.fail_after(30):
        for override in (None, wrong):
            async with driven(server, version, ahead, override=override) as d:
                lease = d.charger.lease
                assert lease is not None
                assert lease.mode is LeaseMode.RELATIVE
                await start_transaction(d.peer, version)
                await trio.sleep(1)  # the transaction runs a second by the peer's count
                await d.charger.set_limit(16, 3)  # a new transaction: counted from its start
                profile = d.sent_profiles()[-1]
                assert profile["charging_profile_kind"] == "Relative"
                assert profile["charging_profile_purpose"] == "TxDefaultProfile"
                assert "valid_to" not in profile
                schedule = profile["charging_schedule"]
                schedule = schedule[0] if isinstance(schedule, list) else schedule
                assert "start_schedule" not in schedule
                composite = await lease.composite_schedule(90)
                assert composite is not None
                (now, limit), (fallback_at, failsafe) = composite.periods
                assert (now, limit, failsafe) == (0, 16, 6)
                assert 57 <= fallback_at <= 60  # the lease, from now (less hubgate's lag)
                await d.charger.upkeep()
                verification = d.charger.verification
                assert verification is not None
                assert (verification.following, verification.lapses) == (True, True)
                assert charger_info(d.care, [d.charger]).connectors[0].lease == "relative"


async def test_a_16_charger_that_stamped_nothing_is_asked_for_its_time(server: Running) -> None:
    """A 1.6 charger shows its clock only in what it stamps, and its StatusNotification may
    leave the timestamp out: before a transaction hubgate would not know it is 7 minutes
    behind (its leases 7 minutes too long). It is asked for MeterValues, always stamped."""
    behind = Quirks(clock_offset_s=-420, sends_triggered=True)
    with trio.fail_after(20):
        async with driven(server, V16, behind, stamped=False) as d:
            triggered = await trio.to_thread.run_sync(d.cp.wait_received, "TriggerMessage", 1)
            assert triggered[0]["requested_message"] == "MeterValues"
            clock = d.charger.station.clock
            await wait_until(lambda: clock.offset_s is not None, "a stamped message")
            assert clock.offset_s == pytest.approx(-420, abs=2)


async def test_energy_only_meter_values_give_a_derived_current_and_a_trigger(
    server: Running,
) -> None:
    """A charger that samples only its energy register every 60 s and refuses any other
    list (go-e, goecharger/go-eCharger-API-v2#105; Growatt, lbbrhzn/ocpp#1838): the refusals
    are kept, the current comes from the energy, and old values are asked for."""
    quirks = Quirks(measurands=frozenset({"Energy.Active.Import.Register"}), fixed_interval=True)
    with trio.fail_after(20):
        async with driven(server, V16, quirks) as d:
            provisioning = d.care.provisioning
            assert provisioning is not None
            assert provisioning.measurands is None
            assert set(provisioning.rejected) == {
                "MeterValuesSampledData",
                "MeterValueSampleInterval",
            }
            assert provisioning.rejected["MeterValueSampleInterval"] == "5: Rejected"
            await trio.to_thread.run_sync(
                d.peer.call,
                call16.StatusNotification(connector_id=1, error_code="NoError", status="Charging"),
            )
            start = datetime.now(UTC) - timedelta(seconds=60)
            for at, wh in ((start, 1000), (start + timedelta(seconds=60), 1184)):
                await meter_values(
                    d.peer, [("Energy.Active.Import.Register", None, str(wh))], at=at
                )
            reading = await d.charger.read()
            phases = reading.phase_currents()
            assert phases is not None
            assert phases == pytest.approx((16.0, 16.0, 16.0))  # 11.04 kW on three phases
            connector = d.charger.station.connector(1)
            assert connector.measured_at is not None
            connector.measured_at -= 30  # older than two sample intervals
            await d.charger.upkeep()
            triggered = await trio.to_thread.run_sync(d.cp.wait_received, "TriggerMessage", 1)
            assert triggered[0] == {"requested_message": "MeterValues", "connector_id": 1}


@pytest.mark.parametrize("version", [V16, V201])
async def test_provisioning_keeps_what_each_charger_took_and_refused(
    server: Running, version: OcppVersion
) -> None:
    """A charger that refuses SoC among its measurands (Alfen, lbbrhzn/ocpp#337) is asked
    again without it; what it took and what it refused are kept per setting and shown."""
    full = "Current.Import,Power.Active.Import,Energy.Active.Import.Register"
    names = {
        V16: ("MeterValuesSampledData", "MeterValueSampleInterval"),
        V201: ("SampledDataCtrlr.TxUpdatedMeasurands", "SampledDataCtrlr.TxUpdatedInterval"),
    }
    measurands, interval = names[version]
    quirks = Quirks(measurands=frozenset(full.split(",")))
    with trio.fail_after(20):
        async with driven(server, version, quirks) as d:
            taken = dict(d.cp.settings)
            info = charger_info(d.care, [d.charger])
    assert taken == {measurands: full, interval: "5"}
    assert info.provisioning is not None
    assert info.provisioning.measurands == tuple(full.split(","))
    assert info.provisioning.accepted == {measurands: full, interval: "5"}
    assert info.provisioning.rejected == {measurands: f"{full},SoC: Rejected"}


async def test_capabilities_are_kept_and_asked_again_at_every_boot(
    server: Running, tmp_path: Any
) -> None:
    """A charger that reboots (Wallbox: daily, evcc-io/evcc#27309; some every minute,
    lbbrhzn/ocpp#1099) is asked again on each connection, after its BootNotification; what
    it said is kept in the file for the next start."""
    path = tmp_path / "chargers.json"
    with trio.fail_after(30):
        async with driven(server, V16, Quirks(rate_units=("W",)), store=CapabilityStore(path)):
            pass
        async with driven(server, V16, Quirks(rate_units=("W",)), store=CapabilityStore(path)) as d:
            assert d.care.stored is not None
            assert d.care.stored.rate_units == ("W",)
            received = [a for a, _ in d.cp.received]
            assert received.index("GetConfiguration") < received.index("SetChargingProfile")
        station = server.registry.get("CP16")
        assert station is not None
        fresh = StationCare(station, store=CapabilityStore(path))
        assert fresh.known
        assert fresh.capabilities.rate_units == ("W",)
        assert fresh.source == "stored"


async def meter_values(
    peer: ChargePointThread,
    samples: list[tuple[str, str | None, str]],
    *,
    at: datetime | None = None,
) -> None:
    """One 1.6 MeterValues of (measurand, phase, value) samples, stamped `at` (now)."""
    sampled = [
        {"value": value, "measurand": measurand, **({"phase": phase} if phase else {})}
        for measurand, phase, value in samples
    ]
    when = (at or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    await trio.to_thread.run_sync(
        peer.call,
        call16.MeterValues(
            connector_id=1, meter_value=[{"timestamp": when, "sampledValue": sampled}]
        ),
    )


async def connectors_of(server: Running, *numbers: int) -> tuple[StationCare, list[OcppCharger]]:
    """CP16's connectors `numbers` driven one limit each, as the gateway drives a station
    with several, its capabilities asked."""
    station = server.registry.get("CP16")
    assert station is not None
    care = StationCare(station)
    chargers = [
        OcppCharger(station, connector_id=n, whole_station=False, settings=SETTINGS, care=care)
        for n in numbers
    ]
    assert await care.prepare(await server.session_of("CP16"))
    return care, chargers


async def test_a_refusal_after_an_interrupted_configuration_still_shares_the_station_limit(
    server: Running,
) -> None:
    """The control loop gives `configure_failsafe` a cycle's deadline: one cut short before
    the station's refusal came back is tried again on the same lease, and the refusal then
    still leads to the station-wide limit (the zoo's ChargePointMax-only stations were once
    never commanded under load: every later try raised the refusal)."""
    with trio.fail_after(20):
        peer = await server.connect("CP16", V16)
        peer.cp.quirks = Quirks(rejected_purposes={"TxDefaultProfile"})
        try:
            _, (charger,) = await connectors_of(server, 1)
            peer.cp.answering.clear()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(charger.configure_failsafe, 60, 6)
                await trio.to_thread.run_sync(peer.cp.wait_received, "SetChargingProfile", 1)
                nursery.cancel_scope.cancel()  # the cycle's deadline
            peer.cp.answering.set()
            await charger.configure_failsafe(60, 6)
            assert charger.shares_station_limit
            assert (await charger.set_limit(10, 3)).current_a == 10
        finally:
            await trio.to_thread.run_sync(peer.stop)


async def test_a_station_refusing_per_connector_limits_gets_one_for_the_station(
    server: Running,
) -> None:
    """A two-connector charger that takes only its station maximum (TxDefaultProfile
    refused; chargers that take one purpose and not the other, lbbrhzn/ocpp#221): its
    connectors' setpoints go out added up, as one ChargePointMaxProfile."""
    with trio.fail_after(20):
        peer = await server.connect("CP16", V16)
        peer.cp.quirks = Quirks(rejected_purposes={"TxDefaultProfile"})
        try:
            care, (first, second) = await connectors_of(server, 1, 2)
            await first.configure_failsafe(60, 6)
            await second.configure_failsafe(60, 6)
            assert (await first.set_limit(10, 3)).current_a == 10
            assert (await second.set_limit(6, 3)).current_a == 6
            profiles = [p for a, p in peer.cp.received if a == "SetChargingProfile"]
            accepted = [
                p for p in profiles if p["charging_profile_purpose"] == "ChargePointMaxProfile"
            ]
            limits = [
                p["charging_schedule"]["charging_schedule_period"][0]["limit"] for p in accepted
            ]
            assert limits[-1] == 16
            assert first.shares_station_limit
            assert second.shares_station_limit
            await first.upkeep()
            assert first.limit_check.following is True
            info = charger_info(care, [first, second])
            assert [(c.shared, c.purpose) for c in info.connectors] == [
                (True, "ChargePointMaxProfile"),
                (True, "ChargePointMaxProfile"),
            ]
        finally:
            await trio.to_thread.run_sync(peer.stop)


@pytest.mark.parametrize(("ignores", "lapses"), [(False, True), (True, False)])
async def test_a_paused_lease_shows_its_lapse_too(
    server: Running, ignores: bool, lapses: bool
) -> None:
    """At 0 A (a paused EV) the composite rises to the failsafe when the lease ends, or
    stays at 0 when the charger keeps the profile; at the failsafe itself it cannot tell."""
    with trio.fail_after(20):
        async with driven(server, V16, Quirks(ignore_valid_to=ignores)) as d:
            await d.charger.set_limit(6, 3)
            await d.charger.upkeep()
            verification = d.charger.verification
            assert verification is not None
            assert verification.lapses is None  # 6 A is the failsafe: nothing to see
            await d.charger.set_limit(0, 3)
            await d.charger.upkeep()
            verification = d.charger.verification
            assert verification is not None
            assert verification.lapses is lapses


@pytest.mark.parametrize(("ignores", "lapses"), [(False, True), (True, False)])
async def test_a_lease_renewed_too_late_shows_a_lapse_not_a_liar(
    server: Running, ignores: bool, lapses: bool
) -> None:
    """Read after hubgate's renewal came late (a loaded gateway: the lease's end passed on
    the charger's clock, here moved on by two minutes), a charger at the failsafe over a
    0 A lease has let it lapse, as it should: not "applies 6 A where 0 A was set", and not
    reserved at its maximum. One still at 0 A keeps profiles past their validTo."""
    with trio.fail_after(20):
        async with driven(server, V16, Quirks(ignore_valid_to=ignores)) as d:
            await d.charger.set_limit(0, 3)
            d.cp.quirks.clock_offset_s = 120
            await d.charger.upkeep()
            verification = d.charger.verification
            assert verification is not None
            assert verification.lapses is lapses
            assert d.charger.limit_check.following is not False, verification.evidence
            assert d.care.capabilities.honours_valid_to is lapses
            assert verification.late is not ignores  # not late for the one that keeps it


async def test_a_phase_switch_waits_out_a_pause_at_zero(server: Running) -> None:
    """KEBA needs 30 s at 0 A before it switches from 3 to 1 phase (evcc-io/evcc#25991);
    switched under load, a charger keeps its phases (traktore-org/sem-community#804): the
    switch is held at 0 A on the old phases for the pause first."""
    settings = replace(SETTINGS, phase_switch_pause_s=0.3)
    with trio.fail_after(20):
        async with driven(server, V16, Quirks()) as d:
            d.charger.settings = settings
            paused = await d.charger.set_limit(10, 1)
            assert (paused.current_a, paused.phases, paused.paused) == (0, 3, True)
            await trio.sleep(0.35)  # the pause passes
            switched = await d.charger.set_limit(10, 1)
            assert (switched.current_a, switched.phases) == (10, 1)
            periods = [
                p["charging_schedule"]["charging_schedule_period"][0]
                for p in d.sent_profiles()
                if p["stack_level"] == 1
            ]
            assert [(p["limit"], p.get("number_phases")) for p in periods[-2:]] == [(0, 3), (10, 1)]


async def test_a_dc_charger_gets_dc_watts_and_its_ac_current_from_its_power(
    server: Running,
) -> None:
    """A DC charger takes W (Alpitronic, evcc-io/evcc#28493): the allocator's amperes per AC
    phase go out as DC power after efficiency and power factor, and its reported DC power
    comes back as AC current per phase; its DC current (Current.Import) is not a phase's."""
    dc = DcConnector(max_power_kw=150, min_power_kw=5)
    with trio.fail_after(20):
        peer = await server.connect("CP16", V16)
        peer.cp.quirks = Quirks(rate_units=("W",))
        try:
            station = server.registry.get("CP16")
            assert station is not None
            charger = OcppCharger(station, settings=SETTINGS, care=StationCare(station), dc=dc)
            assert await charger.care.prepare(await server.session_of("CP16"))
            await charger.configure_failsafe(60, 6)
            await charger.set_limit(100, 3)
            limit = [p for a, p in peer.cp.received if a == "SetChargingProfile"][-1]
            schedule = limit["charging_schedule"]
            assert schedule["charging_rate_unit"] == "W"
            assert float(schedule["charging_schedule_period"][0]["limit"]) == pytest.approx(
                dc.dc_w(100, 230), abs=0.1
            )
            await meter_values(
                peer,
                [("Power.Active.Import", None, "64890"), ("Current.Import", None, "162.2")],
            )
            currents = (await charger.read()).phase_currents()
            assert currents == pytest.approx((dc.ac_current_a(64890, 230),) * 3)
        finally:
            await trio.to_thread.run_sync(peer.stop)
