"""Protocol mode over OCPP: simulated 1.6 and 2.0.1 stations against a test CSMS."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201
from websockets.asyncio.server import ServerConnection, serve
from websockets.typing import Subprotocol

from hubgate.sim import load_scenario
from hubgate.sim.ocpp_station import BACKOFF_S, Station
from hubgate.sim.serving import SiteThread, site_thread
from tests.support.csms import CsmsThread, running_csms
from tests.support.wait import wait_until_blocking
from tests.support.wire import write_wire_scenario

SLOT_16, SLOT_201 = 2, 3


@pytest.fixture
def site_and_csms(tmp_path: Path) -> Iterator[tuple[SiteThread, CsmsThread]]:
    """The wire test site with its stations dialling a test CSMS, both booted."""
    loaded = load_scenario(write_wire_scenario(tmp_path))
    with (
        running_csms() as csms,
        site_thread(loaded, ports_auto=True, csms_url=csms.url, meter_values_s=10) as running,
    ):
        for identity in ("SIM-16", "SIM-201"):
            wait_until_blocking(
                lambda i=identity: csms.received(i, "BootNotification"), what=f"{identity} boot"
            )
        wait_until_blocking(
            lambda: all(s.booted for s in running.site.stations), what="stations booted"
        )
        yield running, csms


def _station(running: SiteThread, identity: str) -> Station:
    return next(s for s in running.site.stations if s.identity == identity)


def _draw(running: SiteThread, slot: int) -> float:
    def draw() -> float:
        ev = running.site.sim.evs[slot]
        assert ev is not None
        return ev.draw_a

    return running.call(draw)


def _profile16(
    profile_id: int, stack: int, amps: float, valid_to: str | None = None
) -> dict[str, Any]:
    profile: dict[str, Any] = {
        "charging_profile_id": profile_id,
        "stack_level": stack,
        "charging_profile_purpose": "TxDefaultProfile",
        "charging_profile_kind": "Relative",
        "charging_schedule": {
            "charging_rate_unit": "A",
            "charging_schedule_period": [{"start_period": 0, "limit": amps}],
        },
    }
    if valid_to is not None:
        profile["valid_to"] = valid_to
    return profile


def _step_until(running: SiteThread, check: Any, what: str, limit_s: int = 60) -> None:
    for _ in range(limit_s):
        if check():
            return
        running.advance(1)
    wait_until_blocking(check, what=what)


def test_stations_report_boot_status_transactions_and_meter_values(
    site_and_csms: tuple[SiteThread, CsmsThread],
) -> None:
    running, csms = site_and_csms
    _step_until(
        running, lambda: csms.received("SIM-16", "StartTransaction"), "1.6 StartTransaction"
    )
    _step_until(
        running, lambda: csms.received("SIM-201", "TransactionEvent"), "2.0.1 TransactionEvent"
    )
    assert csms.received("SIM-16", "Authorize")[0]["id_tag"] == "SIMEV"
    started = csms.received("SIM-201", "TransactionEvent")[0]
    assert started["event_type"] == "Started"
    assert started["evse"]["id"] == 1
    running.advance(12)  # meter values every 10 s: the second one has the EV charging
    for identity in ("SIM-16", "SIM-201"):
        wait_until_blocking(
            lambda i=identity: len(csms.received(i, "MeterValues")) >= 2,
            what=f"{identity} meter values",
        )
    wait_until_blocking(
        lambda: "Charging" in [p["status"] for p in csms.received("SIM-16", "StatusNotification")],
        what="1.6 Charging status",
    )
    statuses = [p["status"] for p in csms.received("SIM-16", "StatusNotification")]
    assert statuses[0] == "Preparing"  # an EV was plugged in at boot
    connector_statuses = [
        p["connector_status"] for p in csms.received("SIM-201", "StatusNotification")
    ]
    assert connector_statuses[0] == "Occupied"
    sample = csms.received("SIM-16", "MeterValues")[-1]["meter_value"][0]["sampled_value"]
    by_key = {(s["measurand"], s.get("phase")): float(s["value"]) for s in sample}
    assert by_key["Current.Import", "L1"] == pytest.approx(_draw(running, SLOT_16), abs=0.01)
    assert by_key["Current.Import", "L1"] == 32.0
    assert by_key["Energy.Active.Import.Register", None] > 0
    assert 20 < by_key["SoC", None] < 30
    sample201 = csms.received("SIM-201", "MeterValues")[-1]["meter_value"][0]["sampled_value"]
    single = {(s["measurand"], s.get("phase")): s["value"] for s in sample201}
    assert single["Current.Import", "L1"] == 32.0
    assert single["Current.Import", "L2"] == 0.0  # a single-phase connector


def test_a_lease_holds_on_the_csms_clock_and_lapses_on_the_station_own_once_cut_off(
    site_and_csms: tuple[SiteThread, CsmsThread],
) -> None:
    running, csms = site_and_csms
    station = _station(running, "SIM-16")
    _step_until(running, lambda: station.connectors[0].tx_id not in (None, "pending"), "tx")
    base = csms.call(
        "SIM-16",
        call16.SetChargingProfile(connector_id=1, cs_charging_profiles=_profile16(1, 0, 16)),
    )
    assert base.status == "Accepted"
    until = running.call(lambda: station.now() + timedelta(seconds=30))
    lease = _profile16(2, 1, 8, until.isoformat().replace("+00:00", "Z"))
    assert (
        csms.call(
            "SIM-16", call16.SetChargingProfile(connector_id=1, cs_charging_profiles=lease)
        ).status
        == "Accepted"
    )
    running.advance(3)
    assert _draw(running, SLOT_16) == 32.0  # the EV reacts after 4 s
    running.advance(3)
    assert _draw(running, SLOT_16) == 8.0
    composite = csms.call("SIM-16", call16.GetCompositeSchedule(connector_id=1, duration=60))
    assert composite.charging_schedule["charging_schedule_period"][0]["limit"] == 8.0
    running.advance(60)  # the site runs ahead of the CSMS, on whose clock the lease holds
    assert _draw(running, SLOT_16) == 8.0
    skew = running.call(lambda: station.now() - datetime.now(UTC))
    assert abs(skew) < timedelta(seconds=1)
    csms.stop()  # cut off: the station's clock runs on at the simulation's rate
    wait_until_blocking(lambda: not station.clock.linked, what="disconnected")
    running.advance(30 + 6)  # validTo passes on the station's own clock, the EV reacts
    assert _draw(running, SLOT_16) == 16.0  # the base profile applies again
    csms.start()
    wait_until_blocking(  # the station dials again after its backoff, up to BACKOFF_S[1] by now
        lambda: len(csms.calls("SIM-16", "BootNotification")) == 2,
        timeout_s=BACKOFF_S[1] + 5,
        what="boot again",
    )
    wait_until_blocking(lambda: station.booted, what="booted again")
    cleared = csms.call("SIM-16", call16.ClearChargingProfile(id=1))
    assert cleared.status == "Accepted"
    running.advance(6)
    assert _draw(running, SLOT_16) == 32.0  # no profile: the connector's maximum


def test_a_201_station_applies_a_profile_and_answers_variables(
    site_and_csms: tuple[SiteThread, CsmsThread],
) -> None:
    running, csms = site_and_csms
    _step_until(running, lambda: _station(running, "SIM-201").connectors[0].tx_id, "2.0.1 tx")
    profile = {
        "id": 7,
        "stack_level": 0,
        "charging_profile_purpose": "TxDefaultProfile",
        "charging_profile_kind": "Relative",
        "charging_schedule": [
            {
                "id": 1,
                "charging_rate_unit": "W",
                "charging_schedule_period": [
                    {"start_period": 0, "limit": 230 * 10, "number_phases": 1}
                ],
            }
        ],
    }
    answer = csms.call("SIM-201", call201.SetChargingProfile(evse_id=1, charging_profile=profile))
    assert answer.status == "Accepted"
    running.advance(6)
    assert _draw(running, SLOT_201) == pytest.approx(10.0)
    bad = csms.call("SIM-201", call201.SetChargingProfile(evse_id=9, charging_profile=profile))
    assert bad.status == "Rejected"  # no such EVSE
    variables = csms.call(
        "SIM-201",
        call201.GetVariables(
            get_variable_data=[
                {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}},
                {"component": {"name": "X"}, "variable": {"name": "Nope"}},
            ]
        ),
    )
    statuses = [r["attribute_status"] for r in variables.get_variable_result]
    assert statuses == ["Accepted", "UnknownVariable"]
    stop = csms.call(
        "SIM-201",
        call201.RequestStopTransaction(
            transaction_id=_station(running, "SIM-201").connectors[0].tx_id
        ),
    )
    assert stop.status == "Accepted"
    running.advance(6)
    assert _draw(running, SLOT_201) == 0.0
    wait_until_blocking(
        lambda: any(
            p["event_type"] == "Ended" for p in csms.received("SIM-201", "TransactionEvent")
        ),
        what="2.0.1 transaction ended",
    )


def test_an_offline_charger_drops_its_socket_and_dials_again(tmp_path: Path) -> None:
    events = """
[[events]]
at_s = 5
kind = "charger-offline"
charger = "cp16"
duration_s = 10
"""
    loaded = load_scenario(write_wire_scenario(tmp_path, events))
    with running_csms() as csms, site_thread(loaded, ports_auto=True, csms_url=csms.url) as running:
        wait_until_blocking(lambda: _station(running, "SIM-16").booted, what="boot")
        running.advance(6)
        wait_until_blocking(lambda: not _station(running, "SIM-16").connected, what="disconnect")
        running.advance(10)
        wait_until_blocking(lambda: csms.arrivals.count("SIM-16") == 2, what="reconnect")
        wait_until_blocking(lambda: csms.received("SIM-16", "BootNotification"), what="boot again")
        assert csms.arrivals.count("SIM-201") == 1  # the other station stayed connected


@contextmanager
def a_csms_that_dies_with_a_call_unanswered() -> Iterator[str]:
    """The URL of a CSMS (as a gateway that is killed) that reads a station's first call,
    then stops listening and resets the connection without answering it."""
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        done = asyncio.Event()

        async def handler(ws: ServerConnection) -> None:
            await ws.recv()
            server.close(close_connections=False)  # its port refuses from now on
            ws.transport.abort()
            done.set()

        server = await serve(
            handler, "127.0.0.1", 0, subprotocols=[Subprotocol("ocpp1.6"), Subprotocol("ocpp2.0.1")]
        )
        box["url"] = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/ocpp"
        box["stop"] = stop = asyncio.Event()
        box["loop"] = asyncio.get_running_loop()
        ready.set()
        await stop.wait()
        server.close()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield box["url"]
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(10)


def test_a_station_whose_csms_dies_with_its_call_unanswered_dials_the_next_at_once(
    tmp_path: Path,
) -> None:
    """Its connection lost, a station gives up the call in flight and dials the next URL
    (after its first back-off), as a charger does: it waited out the call's 30 s response
    timeout first, so a station of a killed gateway found the other one 30 s late."""
    loaded = load_scenario(write_wire_scenario(tmp_path))
    with (
        a_csms_that_dies_with_a_call_unanswered() as dying,
        running_csms() as csms,
        site_thread(loaded, ports_auto=True, csms_url=f"{dying},{csms.url}") as running,
    ):
        for identity in ("SIM-16", "SIM-201"):
            wait_until_blocking(
                lambda i=identity: csms.received(i, "BootNotification"),
                what=f"{identity} boot at the second CSMS",
                timeout_s=4 * BACKOFF_S[0] + 5,
            )
        wait_until_blocking(
            lambda: all(s.booted for s in running.site.stations), what="stations booted"
        )


def test_a_16_station_answers_configuration_availability_remote_and_reset(
    site_and_csms: tuple[SiteThread, CsmsThread],
) -> None:
    running, csms = site_and_csms
    station = _station(running, "SIM-16")
    _step_until(running, lambda: station.connectors[0].tx_id not in (None, "pending"), "tx")
    config = csms.call("SIM-16", call16.GetConfiguration(key=["HeartbeatInterval", "Nope"]))
    assert config.configuration_key == [
        {"key": "HeartbeatInterval", "readonly": False, "value": "300"}
    ]
    assert config.unknown_key == ["Nope"]
    changes = {
        ("MeterValueSampleInterval", "5"): "Accepted",
        ("MeterValueSampleInterval", "soon"): "Rejected",
        ("NumberOfConnectors", "4"): "Rejected",
        ("Foo", "1"): "NotSupported",
    }
    for (key, value), expected in changes.items():
        answer = csms.call("SIM-16", call16.ChangeConfiguration(key=key, value=value))
        assert answer.status == expected, key

    assert (
        csms.call("SIM-16", call16.ChangeAvailability(connector_id=1, type="Inoperative")).status
        == "Accepted"
    )
    running.advance(6)
    assert _draw(running, SLOT_16) == 0.0
    wait_until_blocking(
        lambda: csms.received("SIM-16", "StatusNotification")[-1]["status"] == "Unavailable",
        what="Unavailable",
    )
    csms.call("SIM-16", call16.ChangeAvailability(connector_id=1, type="Operative"))

    tx = int(str(station.connectors[0].tx_id))
    assert csms.call("SIM-16", call16.RemoteStopTransaction(transaction_id=tx)).status == "Accepted"
    wait_until_blocking(lambda: csms.received("SIM-16", "StopTransaction"), what="StopTransaction")
    assert csms.received("SIM-16", "StopTransaction")[0]["transaction_id"] == tx
    running.advance(6)
    assert _draw(running, SLOT_16) == 0.0  # stopped: the EV stays plugged, offered nothing
    assert csms.call("SIM-16", call16.RemoteStopTransaction(transaction_id=tx)).status == "Rejected"
    started = len(csms.received("SIM-16", "StartTransaction"))
    answer = csms.call("SIM-16", call16.RemoteStartTransaction(id_tag="OP", connector_id=1))
    assert answer.status == "Accepted"
    running.advance(6)
    wait_until_blocking(
        lambda: len(csms.received("SIM-16", "StartTransaction")) == started + 1, what="restart"
    )
    assert _draw(running, SLOT_16) == 32.0

    beats = len(csms.received("SIM-16", "Heartbeat"))
    assert (
        csms.call("SIM-16", call16.TriggerMessage(requested_message="Heartbeat")).status
        == "Accepted"
    )
    wait_until_blocking(
        lambda: len(csms.received("SIM-16", "Heartbeat")) > beats, what="triggered heartbeat"
    )
    firmware = call16.TriggerMessage(requested_message="FirmwareStatusNotification")
    assert csms.call("SIM-16", firmware).status == "NotImplemented"

    assert csms.call("SIM-16", call16.Reset(type="Soft")).status == "Accepted"
    wait_until_blocking(lambda: csms.arrivals.count("SIM-16") == 2, what="reconnect after reset")
    wait_until_blocking(
        lambda: csms.received("SIM-16", "BootNotification"), what="boot after reset"
    )


def test_departures_end_the_transactions(tmp_path: Path) -> None:
    path = write_wire_scenario(tmp_path)
    path.write_text(
        path.read_text().replace(
            "initial_occupancy = 1.0", "initial_occupancy = 1.0\nmean_stay_h = 0.01"
        )
    )
    with (
        running_csms() as csms,
        site_thread(load_scenario(path), ports_auto=True, csms_url=csms.url) as running,
    ):
        wait_until_blocking(lambda: all(s.booted for s in running.site.stations), what="boots")
        station = _station(running, "SIM-16")
        _step_until(running, lambda: station.connectors[0].tx_id not in (None, "pending"), "tx")
        tx = int(str(station.connectors[0].tx_id))
        for _ in range(12):  # every stay lasts at least 10 minutes
            running.advance(60)
        assert running.call(lambda: running.site.sim.evs[SLOT_16] is None)
        wait_until_blocking(lambda: csms.received("SIM-16", "StopTransaction"), what="1.6 stop")
        stop = csms.received("SIM-16", "StopTransaction")[0]
        assert stop["reason"] == "EVDisconnected"
        assert stop["transaction_id"] == tx
        assert stop["meter_stop"] > 0
        wait_until_blocking(
            lambda: any(
                p["event_type"] == "Ended" for p in csms.received("SIM-201", "TransactionEvent")
            ),
            what="2.0.1 ended",
        )
        ended = next(
            p for p in csms.received("SIM-201", "TransactionEvent") if p["event_type"] == "Ended"
        )
        assert ended["trigger_reason"] == "EVDeparted"
        wait_until_blocking(
            lambda: csms.received("SIM-16", "StatusNotification")[-1]["status"] == "Available",
            what="Available again",
        )


def test_stations_count_the_frames_they_cannot_read(
    site_and_csms: tuple[SiteThread, CsmsThread],
) -> None:
    running, csms = site_and_csms
    station = _station(running, "SIM-16")
    assert running.call(lambda: running.site.unreadable_frames) == 0
    csms.send_raw("SIM-16", '[2,"df0"fc6483d0-42fT03dd5{"c6bese":"TxDefaultProfile"')
    csms.send_raw("SIM-16", '[2,"x1","SetChargingProfile",{"connectorId":"one"}]')
    wait_until_blocking(lambda: station.unreadable_frames == 2, what="both frames counted")
    assert running.call(running.site.frames_line) == (
        "OCPP frames the 2 stations could not read: 2"
    )
    assert station.connected  # counted, not a reason to hang up
    csms.send_raw("SIM-16", b'[2,"x2","Heartbeat",{"\xff":1}]')  # not UTF-8: closed with 1007
    wait_until_blocking(lambda: station.unreadable_frames == 3, what="the 1007 close counted")
