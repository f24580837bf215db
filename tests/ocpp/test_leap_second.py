"""A leap second from an `ocpp`-package charger: OCPP's dateTime is RFC 3339's, which
allows `23:59:60` (UTC), and the schema check passes it; the call is answered and kept,
the moment read as the last microsecond of the second before it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import trio
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from hubgate.ocpp.meter_values import parse_timestamp
from tests.ocpp.booting import booted
from tests.support.ocpp_listener import V16, V201, Running

LEAP = "2016-12-31T23:59:60Z"
AFTER = "2017-01-01T00:00:00Z"
READ = datetime(2016, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        (LEAP, READ),
        ("2016-12-31t23:59:60.25z", READ),
        ("2017-01-01T00:59:60+01:00", READ),
        ("2016-12-31T18:59:60.5-05:00", READ),
    ],
)
def test_a_leap_second_is_the_end_of_the_second_before(text: str, moment: datetime) -> None:
    assert parse_timestamp(text) == moment
    assert parse_timestamp("2016-12-31T23:59:59Z") < moment < parse_timestamp(AFTER)


def test_only_a_leap_second_is_read_beyond_59() -> None:
    with pytest.raises(ValueError, match="second"):
        parse_timestamp("2016-12-31T23:59:61Z")


async def test_a_16_charger_sends_a_leap_second(server: Running) -> None:
    with trio.fail_after(20):
        async with booted(server, "CP16", V16) as (cp, station):
            await trio.to_thread.run_sync(
                cp.call,
                call16.StatusNotification(
                    connector_id=1, error_code="NoError", status="Preparing", timestamp=LEAP
                ),
            )
            assert station.connector(1).status == "Preparing"
            start = await trio.to_thread.run_sync(
                cp.call,
                call16.StartTransaction(
                    connector_id=1, id_tag="TAG1", meter_start=1000, timestamp=LEAP
                ),
            )
            transaction = station.connector(1).transaction
            assert transaction is not None
            assert transaction.started == READ
            for at, energy in ((LEAP, "1.5"), (AFTER, "1.6")):
                sample = {"value": energy, "measurand": "Energy.Active.Import.Register"}
                await trio.to_thread.run_sync(
                    cp.call,
                    call16.MeterValues(
                        connector_id=1,
                        transaction_id=start.transaction_id,
                        meter_value=[{"timestamp": at, "sampledValue": [dict(sample, unit="kWh")]}],
                    ),
                )
                measurement = station.connector(1).measurement
                assert measurement.timestamp == parse_timestamp(at)
                assert measurement.energy_wh == pytest.approx(float(energy) * 1000)


def _meter_value(at: str, energy_kwh: float) -> dict[str, object]:
    sample = {
        "value": energy_kwh,
        "measurand": "Energy.Active.Import.Register",
        "unit_of_measure": {"unit": "kWh"},
    }
    return {"timestamp": at, "sampled_value": [sample]}


async def test_a_201_station_sends_a_leap_second(server: Running) -> None:
    with trio.fail_after(20):
        async with booted(server, "CP201", V201) as (cs, station):
            await trio.to_thread.run_sync(
                cs.call,
                call201.StatusNotification(
                    timestamp=LEAP, connector_status="Occupied", evse_id=1, connector_id=1
                ),
            )
            assert station.connector(1).status == "Occupied"
            await trio.to_thread.run_sync(
                cs.call,
                call201.TransactionEvent(
                    event_type="Started",
                    timestamp=LEAP,
                    trigger_reason="Authorized",
                    seq_no=0,
                    transaction_info={"transaction_id": "tx-1"},
                    evse={"id": 1, "connector_id": 1},
                    id_token={"id_token": "TAG1", "type": "ISO14443"},
                    meter_value=[_meter_value(LEAP, 5.0)],
                ),
            )
            transaction = station.connector(1).transaction
            assert transaction is not None
            assert (transaction.started, transaction.meter_start_wh) == (READ, 5000.0)
            for at, energy in ((LEAP, 5.1), (AFTER, 5.2)):
                await trio.to_thread.run_sync(
                    cs.call, call201.MeterValues(evse_id=1, meter_value=[_meter_value(at, energy)])
                )
                measurement = station.connector(1).measurement
                assert measurement.timestamp == parse_timestamp(at)
                assert measurement.energy_wh == pytest.approx(energy * 1000)
