"""A meter value that is not a finite number once scaled (a 2.x multiplier of 309 or more,
1e308 with a multiplier of 1, a 1.6 "1e400", "inf" or "NaN"). The message is valid: OCPP
gives the value as a decimal (1.6: a string; 2.x: a number) and the multiplier as an
integer, with no bound, and the schemas set none, so no CallError fits; the message is
answered and kept (forwarded to the CSMS), the sample is not a reading, and the
station's first such sample is logged."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import pytest
import trio
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from hubgate.ocpp.meter_values import Measurement, merge_readings, readings
from hubgate.ocpp.versions import OcppVersion
from tests.ocpp.booting import booted
from tests.support.charge_points import now_text
from tests.support.ocpp_listener import V16, V201, Running
from tests.support.proxy import open_proxied

AT = "2026-12-07T10:00:00Z"
NOT_FINITE_16 = ["1e400", "-1e309", "inf", "-Infinity", "NaN"]
NOT_FINITE_2 = [
    (1, {"multiplier": 309}),
    (0, {"multiplier": 400}),
    (1e308, {"multiplier": 1}),
    (1e306, {"unit": "kWh"}),
    (-1e307, {"unit": "kW", "multiplier": 2}),
]


def _current(value: object, phase: str, **more: Any) -> dict[str, Any]:
    return {"value": value, "measurand": "Current.Import", "phase": phase, **more}


@pytest.mark.parametrize("text", NOT_FINITE_16)
def test_a_16_value_beyond_a_float_is_skipped(text: str) -> None:
    skipped: list[str] = []
    samples = [_current(text, "L1"), _current("16", "L2")]
    [reading] = readings([{"timestamp": AT, "sampledValue": samples}], V16, skipped)
    assert reading[1] == (None, 16.0, None)
    assert skipped == ["Current.Import"]


@pytest.mark.parametrize(("value", "unit"), NOT_FINITE_2)
@pytest.mark.parametrize("version", [V201, OcppVersion.V21])
def test_a_2x_value_beyond_a_float_once_scaled_is_skipped(
    value: float, unit: dict[str, Any], version: OcppVersion
) -> None:
    skipped: list[str] = []
    samples = [_current(value, "L1", unitOfMeasure=unit), _current(16, "L2")]
    [reading] = readings([{"timestamp": AT, "sampledValue": samples}], version, skipped)
    assert reading[1] == (None, 16.0, None)
    assert skipped == ["Current.Import"]


def test_finite_phases_whose_sum_is_not_give_no_power() -> None:
    power = {"value": 1e308, "measurand": "Power.Active.Import"}
    samples = [{**power, "phase": "L1"}, {**power, "phase": "L2"}]
    skipped: list[str] = []
    [reading] = readings([{"timestamp": AT, "sampledValue": samples}], V201, skipped)
    assert reading[3] is None
    assert skipped == ["Power.Active.Import"]


def test_an_energy_rise_beyond_a_float_gives_no_average_power() -> None:
    def energy(at: str, wh: float) -> dict[str, Any]:
        return {"timestamp": at, "sampledValue": [{"value": wh}]}

    values = [energy(AT, -1e308), energy("2026-12-07T10:00:01Z", 1e308)]
    measurement = merge_readings(Measurement(), readings(values, V201))
    assert (measurement.energy_wh, measurement.energy_power_w) == (1e308, None)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "not a finite number" in r.getMessage()]


async def test_a_16_charger_sends_values_beyond_a_float(
    server: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="hubgate.ocpp")
    with trio.fail_after(20):
        async with booted(server, "CP16", V16) as (cp, station):
            start = await trio.to_thread.run_sync(
                cp.call,
                call16.StartTransaction(
                    connector_id=1, id_tag="TAG1", meter_start=1000, timestamp=now_text()
                ),
            )
            for text in NOT_FINITE_16:
                samples = [_current(text, "L1", unit="A"), _current("16", "L2", unit="A")]
                await trio.to_thread.run_sync(
                    cp.call,
                    call16.MeterValues(
                        connector_id=1,
                        transaction_id=start.transaction_id,
                        meter_value=[{"timestamp": now_text(), "sampledValue": samples}],
                    ),
                )  # answered: no CallError raised
                assert station.connector(1).measurement.current_a == (None, 16.0, None), text
            await trio.to_thread.run_sync(
                cp.call,
                call16.StopTransaction(
                    transaction_id=start.transaction_id,
                    meter_stop=2000,
                    timestamp=now_text(),
                    transaction_data=[
                        {"timestamp": now_text(), "sampledValue": [{"value": "1e400"}]}
                    ],
                ),
            )
            transaction = station.transactions[str(start.transaction_id)]
            assert (transaction.meter_start_wh, transaction.meter_stop_wh) == (1000.0, 2000.0)
            assert station.non_finite_samples == len(NOT_FINITE_16)
            assert len(_warnings(caplog)) == 1


def _meter_value(*samples: dict[str, Any]) -> dict[str, Any]:
    return {"timestamp": now_text(), "sampled_value": list(samples)}


def _energy(value: float, **unit: Any) -> dict[str, Any]:
    return {"value": value, "unit_of_measure": {"unit": "Wh", **unit}}


async def test_a_201_station_sends_values_beyond_a_float(
    server: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="hubgate.ocpp")
    with trio.fail_after(20):
        async with booted(server, "CP201", V201) as (cs, station):

            def event(kind: str, seq: int, *meter: dict[str, Any]) -> call201.TransactionEvent:
                return call201.TransactionEvent(
                    event_type=kind,
                    timestamp=now_text(),
                    trigger_reason="Authorized" if kind == "Started" else "MeterValuePeriodic",
                    seq_no=seq,
                    transaction_info={"transaction_id": "tx-1"},
                    evse={"id": 1, "connector_id": 1},
                    id_token={"id_token": "TAG1", "type": "ISO14443"},
                    meter_value=list(meter) or None,
                )

            await trio.to_thread.run_sync(
                cs.call, event("Started", 0, _meter_value(_energy(5, multiplier=309)))
            )
            connector = station.connector(1)
            transaction = connector.transaction
            assert transaction is not None  # kept, without a meter start
            assert (transaction.meter_start_wh, connector.measurement.energy_wh) == (None, None)
            for value, unit in NOT_FINITE_2:
                units = {"unit": "A", **unit}
                current = {"value": value, "measurand": "Current.Import", "phase": "L1"}
                await trio.to_thread.run_sync(
                    cs.call,
                    call201.MeterValues(
                        evse_id=1,
                        meter_value=[
                            _meter_value({**current, "unit_of_measure": units}, _energy(6000))
                        ],
                    ),
                )
                measurement = connector.measurement
                assert measurement.current_a == (None, None, None), (value, unit)
                assert measurement.energy_wh == 6000.0
            await trio.to_thread.run_sync(
                cs.call, event("Updated", 1, _meter_value(_energy(1e308, multiplier=1)))
            )
            await trio.to_thread.run_sync(
                cs.call, event("Ended", 2, _meter_value(_energy(7, multiplier=3)))
            )
            assert transaction.meter_stop_wh == 7000.0
            assert connector.transaction is None
            measurement = connector.measurement
            assert all(
                v is None or math.isfinite(v)
                for v in (*measurement.current_a, measurement.energy_wh, measurement.power_w)
            )
            assert station.non_finite_samples == 2 + len(NOT_FINITE_2)
            assert len(_warnings(caplog)) == 1


async def test_the_proxy_forwards_a_transaction_event_beyond_a_float(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with open_proxied(tmp_path) as env:
            cs = await env.connect("CP201", V201)
            await env.online("CP201")
            event = call201.TransactionEvent(
                event_type="Started",
                timestamp=now_text(),
                trigger_reason="Authorized",
                seq_no=0,
                transaction_info={"transaction_id": "tx-9"},
                evse={"id": 1},
                id_token={"id_token": "TAG-OK", "type": "ISO14443"},
                meter_value=[_meter_value(_energy(5, multiplier=309))],
            )
            answer = await env.call(cs, event)
            assert answer.id_token_info["status"] == "Accepted"  # the CSMS's answer
            [frame] = env.csms.calls("CP201", "TransactionEvent")
            [sample] = frame[3]["meterValue"][0]["sampledValue"]
            assert sample["unitOfMeasure"] == {"unit": "Wh", "multiplier": 309}
            station = env.registry.get("CP201")
            assert station is not None
            assert "tx-9" in station.transactions
            await trio.to_thread.run_sync(cs.stop)
