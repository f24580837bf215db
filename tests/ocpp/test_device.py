"""An OCPP station driven through the control loop's Charger interface."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
import trio
import trio.testing
from ocpp.v16 import call
from ocpp.v201 import call as call201

from hubgate.devices.errors import FailsafeNotAppliedError
from hubgate.ocpp.device import OcppCharger
from hubgate.ocpp.errors import OcppSessionClosedError
from hubgate.ocpp.smart_charging import LeaseSettings
from hubgate.ocpp.versions import OcppVersion
from hubgate.profiles.model import IecState, Quantity
from tests.support.charge_points import ChargePointThread, now_text
from tests.support.ocpp_listener import V16, V201, Running
from tests.support.wait import wait_until


def cp16_charger(server: Running) -> OcppCharger:
    """The charger of station CP16, its increases not held back by an interval."""
    station = server.registry.get("CP16")
    assert station is not None
    return OcppCharger(station, settings=LeaseSettings(min_increase_interval_s=0))


def profiles_sent(cp: ChargePointThread) -> list[dict[str, Any]]:
    """The SetChargingProfile payloads the charge point has received, in order."""
    return [p for a, p in cp.cp.received if a == "SetChargingProfile"]


@asynccontextmanager
async def connected(server: Running) -> AsyncIterator[ChargePointThread]:
    """CP16 connected as a 1.6 charge point, stopped on the way out."""
    cp = await server.connect("CP16", V16)
    try:
        yield cp
    finally:
        await trio.to_thread.run_sync(cp.stop)


async def attended(
    charger: OcppCharger, server: Running, cp: ChargePointThread, nursery: trio.Nursery
) -> None:
    """CP16 attended in `nursery` (its exchanges run there), booted, settled and its
    failsafe configured."""
    nursery.start_soon(charger.care.attend, await server.session_of("CP16"))
    boot = call.BootNotification(charge_point_model="M", charge_point_vendor="V")
    await trio.to_thread.run_sync(cp.call, boot)
    await wait_until(lambda: charger.care.known, "the station settled")
    await charger.configure_failsafe(timeout_s=60.0, failsafe_current_a=6.0)


async def test_read_limit_failsafe_and_heartbeat(server: Running) -> None:
    charger = cp16_charger(server)
    assert charger.id == "charger-16"
    with pytest.raises(OcppSessionClosedError):
        await charger.read()
    assert charger.heartbeat_quiet_for_s() == 0  # (the beat says it is not connected)
    with trio.fail_after(20):
        async with connected(server) as cp:
            session = await server.session_of("CP16")
            with pytest.raises(FailsafeNotAppliedError, match="capabilities not read yet"):
                await charger.configure_failsafe(timeout_s=3.0, failsafe_current_a=6.0)
            assert await charger.care.prepare(session)
            await charger.configure_failsafe(timeout_s=3.0, failsafe_current_a=6.0)
            (base,) = await trio.to_thread.run_sync(cp.cp.wait_received, "SetChargingProfile", 1)
            assert (base["stack_level"], "valid_to" in base) == (0, False)
            assert charger.heartbeat_period_s == pytest.approx(0.5)

            applied = await charger.set_limit(16.0, 3)
            assert (applied.current_a, applied.phases, applied.paused) == (16.0, 3, False)
            assert (await charger.set_limit(16.2, 3)).current_a == 16.0  # deadband
            # a decrease of one step is never held back: the site may be over its limit
            assert (await charger.set_limit(15.9, 3)).current_a == 15.9
            assert (await charger.set_limit(0.0, 3)).paused

            await trio.to_thread.run_sync(
                cp.call,
                call.StatusNotification(connector_id=1, error_code="NoError", status="Charging"),
            )
            samples = [
                {"value": str(a), "measurand": "Current.Import", "phase": p, "unit": "A"}
                for a, p in ((9.5, "L1"), (9.6, "L2"), (9.7, "L3"))
            ] + [{"value": "6.6", "measurand": "Power.Active.Import", "unit": "kW"}]
            await trio.to_thread.run_sync(
                cp.call,
                call.MeterValues(
                    connector_id=1, meter_value=[{"timestamp": now_text(), "sampledValue": samples}]
                ),
            )
            reading = await charger.read()
            assert reading.state is IecState.C
            assert reading.phase_currents() == (9.5, 9.6, 9.7)
            assert reading.get(Quantity.POWER_TOTAL) == pytest.approx(6600.0)
            assert reading.get(Quantity.APPLIED_CURRENT_LIMIT) == 0.0
            assert reading.at <= trio.current_time()

            sent = len(cp.cp.received)
            assert 0 < charger.heartbeat_quiet_for_s() <= 2  # (`QuietBeat`: no task for it)
            await charger.heartbeat()  # not due yet
            assert len(cp.cp.received) == sent
            await trio.sleep(2.1)  # renewal is due 1 s before the 3 s lease ends
            assert charger.heartbeat_quiet_for_s() == 0
            await charger.heartbeat()
            renewed = await trio.to_thread.run_sync(cp.cp.wait_received, "SetChargingProfile", 4)
            assert "valid_to" in renewed[-1]


async def test_a_renewal_waiting_behind_a_new_limit_renews_that_limit(server: Running) -> None:
    """A lease renewal (`heartbeat`) that waits for a limit in flight renews that limit,
    not the one before it: re-sending the older one took back an increase the charger had
    just accepted (a decrease is never held back), and the next increase then waited
    `min_increase_interval_s` again (the e2e 1.6 station held at 0 A for 40 simulated s)."""
    charger = cp16_charger(server)
    with trio.fail_after(20):
        async with connected(server) as cp:
            assert await charger.care.prepare(await server.session_of("CP16"))
            await charger.configure_failsafe(timeout_s=60.0, failsafe_current_a=6.0)
            await charger.set_limit(0.0, 3)
            sent = len(profiles_sent(cp))
            cp.cp.answering.clear()  # the increase is in flight until the renewal waits too
            async with trio.open_nursery() as nursery:
                nursery.start_soon(charger.set_limit, 16.0, 3)
                await trio.to_thread.run_sync(cp.cp.wait_received, "SetChargingProfile", sent + 1)
                nursery.start_soon(charger.heartbeat)
                await trio.testing.wait_all_tasks_blocked()
                cp.cp.answering.set()
            profiles = profiles_sent(cp)
            limits = [
                p["charging_schedule"]["charging_schedule_period"][0]["limit"] for p in profiles
            ]
            assert limits[sent:] == [16]  # the renewal was not due: nothing more went out
            assert charger.latest().get(Quantity.APPLIED_CURRENT_LIMIT) == 16.0


async def test_a_limit_outlasting_the_loops_deadline_is_still_applied(server: Running) -> None:
    """A charger slower to answer than the control loop's command deadline (40 % of a
    cycle: 100 ms at 0.25 s, less than a cellular round trip): the exchange goes on in the
    station's own task when the loop moves on, and the next cycle finds the limit accepted.
    Cut short with the loop, the profile went out every cycle and was never seen accepted:
    the charger was never verified, and its frames piled up."""
    charger = cp16_charger(server)
    with trio.fail_after(20):
        async with connected(server) as cp, trio.open_nursery() as nursery:
            await attended(charger, server, cp, nursery)
            await charger.set_limit(6.0, 3)
            sent = len(profiles_sent(cp))
            cp.cp.answering.clear()  # it answers slower than the deadline
            with trio.move_on_after(0.1) as cut:
                await charger.set_limit(16.0, 3)
            assert cut.cancelled_caught
            cp.cp.answering.set()
            lease = charger.lease
            assert lease is not None
            await wait_until(
                lambda: lease.planner.last is not None and lease.planner.last.current_a == 16,
                "the limit accepted after all",
            )
            applied = await charger.set_limit(16.0, 3)  # the next cycle: nothing to send
            assert applied.current_a == 16
            assert len(profiles_sent(cp)) == sent + 1
            nursery.cancel_scope.cancel()


async def test_a_setpoint_that_sends_nothing_is_known_at_once(server: Running) -> None:
    """`limit_in_force`: the limit in force, without a task or a message, when `set_limit`
    would send nothing (the loop hands an OCPP charger every cycle's setpoint); None when
    it would: before the first limit, a decrease, other phases, an exchange in progress, a
    renewal due."""
    charger = cp16_charger(server)
    with trio.fail_after(20):
        async with connected(server) as cp:
            assert await charger.care.prepare(await server.session_of("CP16"))
            await charger.configure_failsafe(timeout_s=3.0, failsafe_current_a=6.0)
            assert charger.limit_in_force(16.0, 3) is None  # no limit yet
            await charger.set_limit(16.0, 3)
            sent = len(cp.cp.received)
            held = charger.limit_in_force(16.2, 3)  # within the deadband
            assert held is not None
            assert (held.current_a, held.phases, held.paused) == (16.0, 3, False)
            assert charger.limit_in_force(15.0, 3) is None  # a decrease goes out
            assert charger.limit_in_force(16.0, 1) is None  # so do other phases
            cp.cp.answering.clear()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(charger.set_limit, 10.0, 3)
                await trio.to_thread.run_sync(cp.cp.wait_received, "SetChargingProfile", 3)
                assert charger.limit_in_force(16.0, 3) is None  # an exchange in progress
                cp.cp.answering.set()
            assert charger.limit_in_force(10.0, 3) is not None
            await wait_until(
                lambda: charger.limit_in_force(10.0, 3) is None, "the renewal due", timeout_s=5
            )
            assert len(cp.cp.received) == sent + 1  # only the decrease went out


async def test_a_held_setpoint_says_when_it_comes_due(server: Running) -> None:
    """`quiet_until`: an unchanged setpoint need not be handed again before then (the loop
    then skips the connector): at its renewal, or earlier where a paced increase comes due;
    -inf while it must be asked again (an exchange sent it, one is still in progress)."""
    station = server.registry.get("CP16")
    assert station is not None
    charger = OcppCharger(station, settings=LeaseSettings(min_increase_interval_s=0.5))
    with trio.fail_after(20):
        async with connected(server) as cp:
            assert await charger.care.prepare(await server.session_of("CP16"))
            await charger.configure_failsafe(timeout_s=3.0, failsafe_current_a=6.0)
            assert charger.quiet_until == -math.inf
            await charger.set_limit(16.0, 3)
            lease = charger.lease
            assert lease is not None
            renewal = charger.quiet_until  # (between 1.5 and 2 s of a 3 s lease)
            assert 1.5 <= renewal - lease.planner.sent_at <= 2.0 + 1e-9
            assert charger.limit_in_force(16.2, 3) is not None  # within the deadband
            assert charger.quiet_until == pytest.approx(renewal)
            assert charger.limit_in_force(18.0, 3) is not None  # an increase, paced
            increase = charger.quiet_until
            assert increase == pytest.approx(lease.planner.sent_at + 0.5)
            await trio.sleep_until(increase)
            assert charger.limit_in_force(18.0, 3) is None  # due when it said
            await charger.set_limit(18.0, 3)
            assert charger.limit_in_force(18.0, 3) is not None
            await trio.sleep_until(charger.quiet_until)
            assert charger.limit_in_force(18.0, 3) is None  # the renewal, due when it said
            cp.cp.answering.clear()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(charger.set_limit, 10.0, 3)
                await trio.to_thread.run_sync(cp.cp.wait_received, "SetChargingProfile", 4)
                assert charger.limit_in_force(10.0, 3) is None  # an exchange in progress
                assert charger.quiet_until == -math.inf
                cp.cp.answering.set()
            assert charger.quiet_until > trio.current_time()
            told: list[float] = []
            charger.due_again = lambda: told.append(trio.current_time())
            charger.latest()
            charger.latest()
            assert len(told) == 1  # (its first reading)
            samples = [{"value": "7.5", "measurand": "Current.Import", "unit": "A"}]
            values = call.MeterValues(
                connector_id=1, meter_value=[{"timestamp": now_text(), "sampledValue": samples}]
            )
            await trio.to_thread.run_sync(cp.call, values)
            measured = charger.latest()
            assert measured.get(Quantity.CURRENT_L1) == 7.5
            assert len(told) == 1  # a new measurement alone: not due
            charging = call.StatusNotification(
                connector_id=1, error_code="NoError", status="Charging"
            )
            await trio.to_thread.run_sync(cp.call, charging)
            charger.latest()
            charger.latest()
            assert len(told) == 2  # another status may make it due: the loop is told once
        async with connected(server):
            await server.session_of("CP16")
            charger.latest()
            before = len(told)
            charger.latest()  # (the same reading)
            assert len(told) == before + 1  # a new connection: its lease is due, until sent
            assert charger.limit_in_force(10.0, 3) is None  # (a lease of the old one)


async def test_the_latest_reading_is_made_again_only_when_something_changed(
    server: Running,
) -> None:
    """The loop asks every cycle; a station reports every few seconds: `latest` gives the
    same reading until a status, a measurement or the limit in force changes, and
    `transaction` the same transaction until it changes."""
    charger = cp16_charger(server)
    with trio.fail_after(20):
        async with connected(server) as cp:
            assert await charger.care.prepare(await server.session_of("CP16"))
            await charger.configure_failsafe(timeout_s=60.0, failsafe_current_a=6.0)
            await charger.set_limit(16.0, 3)
            unmeasured = charger.latest()  # never measured: its values, stamped now
            await trio.sleep(0.01)
            again = charger.latest()
            assert again.at > unmeasured.at
            assert again.values == unmeasured.values == {Quantity.APPLIED_CURRENT_LIMIT: 16.0}
            assert (again.state, again.state_at) == (None, None)
            samples = [{"value": "7.5", "measurand": "Current.Import", "unit": "A"}]
            values = call.MeterValues(
                connector_id=1, meter_value=[{"timestamp": now_text(), "sampledValue": samples}]
            )
            await trio.to_thread.run_sync(cp.call, values)
            first = charger.latest()
            assert charger.latest() is first
            charging = call.StatusNotification(
                connector_id=1, error_code="NoError", status="Charging"
            )
            await trio.to_thread.run_sync(cp.call, charging)
            started = charger.latest()
            assert (first.state, started.state) == (None, IecState.C)  # (Unknown before)
            assert charger.latest() is started
            samples[0]["value"] = "9.5"
            await trio.to_thread.run_sync(cp.call, values)
            measured = charger.latest()
            assert (started.get(Quantity.CURRENT_L1), measured.get(Quantity.CURRENT_L1)) == (
                7.5,
                9.5,
            )
            assert measured.at > started.at
            await charger.set_limit(10.0, 3)
            assert charger.latest().get(Quantity.APPLIED_CURRENT_LIMIT) == 10.0
            assert measured.get(Quantity.APPLIED_CURRENT_LIMIT) == 16.0

            assert charger.transaction() is None
            start = call.StartTransaction(
                connector_id=1, id_tag="TAG-1", meter_start=0, timestamp=now_text()
            )
            await trio.to_thread.run_sync(cp.call, start)
            running = charger.transaction()
            assert running is not None
            assert (running.id_token, running.stopped) == ("TAG-1", False)
            assert charger.transaction() is running
            reported = charger.station.connector(1).transaction
            assert reported is not None
            reported.stopped = datetime.now(UTC)  # (as a 2.x Ended event leaves it)
            ended = charger.transaction()
            assert ended is not None
            assert (ended.transaction_id, ended.stopped) == (running.transaction_id, True)


def _zero_amps(version: OcppVersion) -> Any:
    """A MeterValues of 0 A on connector/EVSE 1, stamped now."""
    if version is V16:
        sample: dict[str, Any] = {"value": "0", "unit": "A"}
    else:
        sample = {"value": 0.0, "unit_of_measure": {"unit": "A"}}
    sample |= {"measurand": "Current.Import", "phase": "L1"}
    values = [{"timestamp": now_text(), "sampled_value": [sample]}]
    if version is V16:
        return call.MeterValues(connector_id=1, meter_value=values)
    return call201.MeterValues(evse_id=1, meter_value=values)


def _started(version: OcppVersion) -> list[Any]:
    """What a station sends when an EV starts charging, before its next MeterValues."""
    if version is V16:
        return [call.StatusNotification(connector_id=1, error_code="NoError", status="Charging")]
    return [
        call201.StatusNotification(
            timestamp=now_text(), connector_status="Occupied", evse_id=1, connector_id=1
        ),
        call201.TransactionEvent(
            event_type="Started",
            timestamp=now_text(),
            trigger_reason="ChargingStateChanged",
            seq_no=0,
            transaction_info={"transaction_id": "tx-1", "charging_state": "Charging"},
            evse={"id": 1, "connector_id": 1},
        ),
    ]


@pytest.mark.parametrize("version", [V16, V201])
async def test_a_start_is_known_before_its_meter_values_show_it(
    server: Running, version: OcppVersion
) -> None:
    """The station's StatusNotification (1.6) or TransactionEvent (2.0.1) says its EV
    started; its MeterValues still say 0 A. The reading says so with the time the state
    changed (`Reading.state_at`, after its values' `at`), so the loop does not take the
    EV's draw, which the site meter sees first, for base load (tests/control/test_loop.py
    test_a_start_reported_late_is_not_taken_for_base_load)."""
    identity = "CP16" if version is V16 else "CP201"
    station = server.registry.get(identity)
    assert station is not None
    charger = OcppCharger(station)
    with trio.fail_after(20):
        cp = await server.connect(identity, version)
        try:
            await trio.to_thread.run_sync(cp.call, _zero_amps(version))
            idle = charger.latest()
            assert idle.state_at is None
            for request in _started(version):
                await trio.to_thread.run_sync(cp.call, request)
            started = charger.latest()
        finally:
            await trio.to_thread.run_sync(cp.stop)
    assert started.state is IecState.C
    assert started.get(Quantity.CURRENT_L1) == 0.0  # its values: not yet
    assert started.at == idle.at
    assert started.state_at is not None
    assert started.state_at > started.at


def _tasks_named(suffix: str) -> int:
    """How many tasks of this Trio run have a name ending in `suffix`."""
    root = trio.lowlevel.current_root_task()
    assert root is not None
    count, todo = 0, [root]
    while todo:
        task = todo.pop()
        count += task.name.endswith(suffix)
        todo.extend(t for n in task.child_nurseries for t in n.child_tasks)
    return count


async def test_a_slow_station_is_sent_the_newest_limit_not_a_queue_of_them(
    server: Running,
) -> None:
    """While the station holds its answer to one limit, the loop asks a new one each cycle,
    each call cut short at the cycle's deadline: at most one exchange waits behind the one
    in flight, shared by the later calls, and it sends the newest limit, here a decrease.
    Each call queued an exchange of its own before, and they went out in order: a task per
    connector per cycle while the station was slow, and the decrease after every older
    setpoint (each a round trip of the slow station)."""
    charger = cp16_charger(server)
    with trio.fail_after(30):
        async with connected(server) as cp, trio.open_nursery() as nursery:
            await attended(charger, server, cp, nursery)
            await charger.set_limit(0.0, 3)
            sent = len(profiles_sent(cp))
            cp.cp.answering.clear()
            with trio.move_on_after(0.05):  # the cycle moves on; the exchange goes on
                await charger.set_limit(16.0, 3)
            await trio.to_thread.run_sync(cp.cp.wait_received, "SetChargingProfile", sent + 1)
            for amps in (20.0, 24.0, 22.0, 6.0):  # four cycles, each cut at its deadline
                with trio.move_on_after(0.05):
                    await charger.set_limit(amps, 3)
            assert _tasks_named(".aside") <= 2  # the one in flight and one waiting
            cp.cp.answering.set()
            assert (await charger.set_limit(6.0, 3)).current_a == 6.0  # after those before
            profiles = profiles_sent(cp)[sent:]
            limits = [
                p["charging_schedule"]["charging_schedule_period"][0]["limit"] for p in profiles
            ]
            assert limits == [16.0, 6.0]
            nursery.cancel_scope.cancel()


async def test_a_setpoint_for_an_exchange_waiting_its_turn_is_left_with_it_at_once(
    server: Running,
) -> None:
    """`joins_turn`: while an exchange waits behind the one the slow station holds, a new
    setpoint is left with it without a call (the loop started a task each cycle that waited
    for it and was cut at the deadline), and it sends the newest when its turn comes; with
    none waiting `set_limit` must be called (it sends, or starts the turn behind)."""
    charger = cp16_charger(server)
    with trio.fail_after(30):
        async with connected(server) as cp, trio.open_nursery() as nursery:
            await attended(charger, server, cp, nursery)
            await charger.set_limit(0.0, 3)
            assert not charger.joins_turn(10.0, 3)  # nothing in flight
            sent = len([a for a, _ in cp.cp.received if a == "SetChargingProfile"])
            cp.cp.answering.clear()
            with trio.move_on_after(0.05):  # in flight, its answer held
                await charger.set_limit(16.0, 3)
            await trio.to_thread.run_sync(cp.cp.wait_received, "SetChargingProfile", sent + 1)
            assert not charger.joins_turn(20.0, 3)  # in flight, none waiting behind it
            with trio.move_on_after(0.05):  # this one waits behind it
                await charger.set_limit(20.0, 3)
            for amps in (24.0, 22.0, 6.0):  # three cycles: no call, no task
                assert charger.joins_turn(amps, 3)
                assert charger.quiet_until == -math.inf  # (handed again next cycle)
            assert _tasks_named(".aside") <= 2  # the one in flight and the one waiting
            cp.cp.answering.set()
            await trio.to_thread.run_sync(cp.cp.wait_received, "SetChargingProfile", sent + 2)
            await wait_until(lambda: not charger.care.waiting(charger.connector_id), "its turn")
            assert (await charger.set_limit(6.0, 3)).current_a == 6.0  # in force, not sent
            profiles = [p for a, p in cp.cp.received if a == "SetChargingProfile"][sent:]
            limits = [
                p["charging_schedule"]["charging_schedule_period"][0]["limit"] for p in profiles
            ]
            assert limits == [16.0, 6.0]
            nursery.cancel_scope.cancel()
