"""Charging sessions from the loop's connector states: start, energy, peaks, setpoints, the
reasons that held them back, the id token, the end; kept across a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from hubgate.devices.model import ChargingTransaction
from hubgate.records.sessions import SessionRecorder
from hubgate.records.store import RecordStore, SessionQuery
from tests.support.states import connector

T0 = 1_700_000_000.0


def test_a_session_from_plug_in_to_unplug_with_its_energy_and_limits() -> None:
    store = RecordStore()
    recorder = SessionRecorder(store, T0)
    key = "cp-1#1"
    steps = [
        connector(key, status="A", setpoint_a=0.0),  # nobody there
        connector(key, status="B", setpoint_a=16.0, energy_kwh=100.0, reason="NOT_WANTING"),
        connector(
            key,
            status="C",
            setpoint_a=16.0,
            measured_a=(15.8, 15.9, 15.7),
            energy_kwh=100.5,
            reason="PHASE_CURRENT",
        ),
        connector(
            key,
            status="C",
            setpoint_a=10.0,
            measured_a=(9.9, 10.0, 9.8),
            energy_kwh=101.0,
            reason="GRID_OPERATOR",
        ),
        connector(
            key, status="C", setpoint_a=32.0, measured_a=(31.0, 31.5, 31.2), energy_kwh=102.5
        ),
        connector(key, status="A", setpoint_a=0.0, energy_kwh=102.5),
    ]
    for n, state in enumerate(steps):
        recorder.observe((state,), {}, T0 + 60.0 * n)
    (session,) = store.sessions(SessionQuery())
    assert session.connector == key
    assert (session.started_at, session.stopped_at) == (T0 + 60, T0 + 300)
    assert session.energy_kwh == pytest.approx(2.5)
    assert session.peak_current_a == 31.5
    assert (session.min_setpoint_a, session.max_setpoint_a) == (10.0, 32.0)
    assert session.limited_s == {"PHASE_CURRENT": 60.0, "GRID_OPERATOR": 60.0}
    assert session.stop_reason == "EV unplugged"
    assert session.id_token is None


def test_an_ocpp_transaction_gives_the_token_and_power_counts_without_a_register() -> None:
    store = RecordStore()
    recorder = SessionRecorder(store, T0)
    key = "cp-2#1"
    tx = ChargingTransaction("tx-7", "RFID-42")
    for n in range(4):  # 11 kW, three minutes after the first reading, then stopped
        state = connector(key, status="C", power_kw=11.0, measured_a=(16.0, 16.0, 16.0))
        recorder.observe((state,), {key: tx}, T0 + 60.0 * n)
    assert store.sessions(SessionQuery(open_only=True))[0].id_token == "RFID-42"
    stopped = ChargingTransaction("tx-7", "RFID-42", stopped=True, stop_reason="Remote")
    recorder.observe((connector(key, status="F"),), {key: stopped}, T0 + 240.0)
    (session,) = store.sessions(SessionQuery(id_token="RFID-42"))
    assert session.transaction_id == "tx-7"
    assert session.energy_kwh == pytest.approx(11.0 * 3 / 60)
    assert session.stop_reason == "Remote"
    assert store.sessions(SessionQuery(id_token="someone else")) == []


def test_open_sessions_are_written_as_they_go_and_closed_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite3"
    store = RecordStore(path)
    recorder = SessionRecorder(store, T0, flush_s=30.0)
    key = "cp-3#1"
    for n in range(4):
        state = connector(key, status="C", energy_kwh=10.0 + n, measured_a=(8.0, 8.0, 8.0))
        recorder.observe((state,), {}, T0 + 20.0 * n)
    (going,) = store.sessions(SessionQuery(open_only=True))
    assert going.energy_kwh == pytest.approx(2.0)  # written at 40 s, the flush after 30 s
    store.close()
    again = RecordStore(path)
    SessionRecorder(again, T0 + 3600.0)
    (closed,) = again.sessions(SessionQuery(connector=key))
    assert closed.stopped_at is not None
    assert closed.stop_reason == "hubgate stopped"
    assert again.sessions(SessionQuery(open_only=True)) == []
