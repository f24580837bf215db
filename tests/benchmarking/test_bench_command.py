"""`hubgate bench --quick --json`: runs as a command (a simulated site in its own process, the
gateway controlling it) and reports sane figures from one run. It settles 2 s instead of 30
(`--settle`) and counts 5 cycles instead of 20 (`--cycles`): the figures' accuracy is not this
test's, and those waits were most of the run's time."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hubgate.benchmarking.capacity import MODEL, max_connectors
from hubgate.benchmarking.end_to_end import CycleRun
from hubgate.benchmarking.report import render
from hubgate.cli import main

HUBGATE = str(Path(sys.executable).parent / "hubgate")
pytestmark = pytest.mark.timeout(450)  # the fixture runs `hubgate bench --quick` (400 s at most)
CODEC_CASES = {
    "fc3_request_and_10_register_response",
    "decode_125_registers_into_60_fields",
    "crc16_256_bytes",
}


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    done = subprocess.run(
        [HUBGATE, "bench", "--quick", "--settle", "2", "--cycles", "5", "--json"],
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    parsed: dict[str, Any] = json.loads(done.stdout)
    return parsed


def check_comparison(c: dict[str, Any], peer: str) -> None:
    """Positive times, the named peer (installed in the dev extras) and its ratio from them."""
    assert c["peer"] == peer
    assert c["hubgate_us"] > 0
    assert c["peer_us"] > 0
    assert c["ratio"] == pytest.approx(c["peer_us"] / c["hubgate_us"])


def test_documented_keys(report: dict[str, Any]) -> None:
    assert report.keys() == {
        "hubgate_version",
        "machine",
        "quick",
        "codec",
        "allocation",
        "modbus",
        "ocpp",
        "end_to_end",
        "capacity",
    }
    assert report["quick"] is True
    assert report["machine"]["cpus"] >= 1
    assert report["codec"].keys() == CODEC_CASES
    assert report["ocpp"].keys() == {
        "session_per_message",
        "listener_per_message_us",
        "stations_per_core",
        "session_stations_per_core",
    }
    assert report["capacity"]["model"] == MODEL


def test_codec_and_modbus_against_pymodbus(report: dict[str, Any]) -> None:
    for case in CODEC_CASES:
        check_comparison(report["codec"][case], "pymodbus")
    assert report["modbus"].keys() == {"10", "50"}  # devices read at once
    for read in report["modbus"].values():
        check_comparison(read, "pymodbus")
        assert read["round_wall_ms"] > 0


def test_allocation_grows_with_connectors(report: dict[str, Any]) -> None:
    cycle_us = {int(n): us for n, us in report["allocation"]["cycle_us"].items()}
    assert sorted(cycle_us) == [10, 100, 1_000]
    assert all(us > 0 for us in cycle_us.values())
    assert cycle_us[10] < cycle_us[1_000]


def test_ocpp_against_the_ocpp_package(report: dict[str, Any]) -> None:
    ocpp = report["ocpp"]
    for action in ("Heartbeat", "MeterValues"):
        check_comparison(ocpp["session_per_message"][action], "ocpp-package")
        # The whole path (WebSocket, sockets) costs more than the session alone.
        whole = ocpp["listener_per_message_us"][action]
        assert whole > ocpp["session_per_message"][action]["hubgate_us"]
    per_station_us = (
        ocpp["listener_per_message_us"]["MeterValues"] / 10
        + ocpp["listener_per_message_us"]["Heartbeat"] / 60
    )
    assert ocpp["stations_per_core"] == math.floor(1e6 / per_station_us)
    session = ocpp["session_stations_per_core"]
    assert session["peer"] == "ocpp-package"
    assert session["ratio"] == pytest.approx(
        session["hubgate"] / session["peer_stations"], rel=1e-3
    )


def test_the_capacity_comes_from_the_measured_cycle(report: dict[str, Any]) -> None:
    run, capacity = report["end_to_end"], report["capacity"]
    assert run["scenario"] == "depot-200-steady"
    assert (run["connectors"], run["modbus_connectors"], run["ocpp_connectors"]) == (200, 100, 100)
    assert run["cycles"] == 5  # --cycles
    assert run["ocpp_stations_online"] == 50
    assert 0 < run["devices_reachable"] <= run["devices"]
    assert 0 < run["latency_p50_ms"] <= run["latency_p99_ms"] <= run["latency_max_ms"]
    assert run["cpu_per_cycle_ms"] == pytest.approx(run["cpu_s"] * 1e3 / run["cycles"])
    assert run["cpu_per_connector_us"] == pytest.approx(run["cpu_per_cycle_ms"] * 1e3 / 200)
    assert capacity["measured_connectors"] == 200
    assert capacity["cycle_s"] == run["cycle_s"] == 1.0
    measured = CycleRun(
        **{k: v for k, v in run.items() if k in CycleRun.__dataclass_fields__}, cycle_cpu_ms=(1.0,)
    )
    assert capacity["max_connectors"] == max_connectors(measured)
    assert capacity["extrapolated"] == (capacity["max_connectors"] > 200)


def test_text_report_names_every_figure(report: dict[str, Any]) -> None:
    text = render(report)
    for phrase in (
        "capacity report",
        "Measured, end to end (depot-200-steady: 200 connectors",
        "gateway CPU per cycle",
        "latency, sensing to last command",
        f"up to {report['capacity']['max_connectors']:,} connectors per 1 s cycle",
        "decode_125_registers_into_60_fields",
        "1000 connectors",
        "stations per core",
        "Model: ",
    ):
        assert phrase in text


@pytest.mark.parametrize(
    ("option", "value", "problem"),
    [
        *(("--settle", v, "give seconds, 0 or more") for v in ("-1", "soon", "inf")),
        *(("--cycles", v, "give a whole number of cycles, 1 or more") for v in ("0", "2.5", "x")),
    ],
)
def test_a_setting_out_of_its_range_is_refused(
    option: str, value: str, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["bench", option, value])
    assert info.value.code == 2
    assert f"{problem}, got {value!r}" in capsys.readouterr().err
