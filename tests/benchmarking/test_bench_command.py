"""`hubgate bench --quick --json`: runs as a command and reports sane figures from one run."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hubgate.benchmarking.capacity import MODEL

HUBGATE = str(Path(sys.executable).parent / "hubgate")
CODEC_CASES = {
    "fc3_request_and_10_register_response",
    "decode_125_registers_into_60_fields",
    "crc16_256_bytes",
}


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    done = subprocess.run(
        [HUBGATE, "bench", "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
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
    assert report["capacity"]["cycles"].keys() == {"1s", "100ms"}
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


def test_capacity_fits_the_budget(report: dict[str, Any]) -> None:
    capacity = report["capacity"]
    cycles = capacity["cycles"]
    for cycle in cycles.values():
        assert cycle["max_connectors"] > 0
        # --quick measures up to 1,000 connectors and 50 devices read at once.
        assert cycle["extrapolated"] == {
            "allocation": cycle["max_connectors"] > 1_000,
            "modbus": cycle["max_connectors"] / 2 > 50,
        }
        work_ms = cycle["allocation_ms"] + cycle["modbus_ms"] + cycle["ocpp_ms"]
        assert 0 < work_ms <= capacity["headroom"] * cycle["cycle_s"] * 1000 * (1 + 1e-9)
        chargers = cycle["max_connectors"] / 2
        assert cycle["modbus_ms"] == pytest.approx(chargers * cycle["modbus_read_us"] / 1000)
        # Beyond the measured device counts, a read costs at least the largest measurement.
        assert cycle["modbus_read_us"] >= report["modbus"]["50"]["hubgate_us"] * (1 - 1e-9)
    assert cycles["100ms"]["max_connectors"] < cycles["1s"]["max_connectors"]


def test_text_report_names_every_figure() -> None:
    done = subprocess.run(
        [HUBGATE, "bench", "--quick"], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    for phrase in (
        "capacity report",
        "decode_125_registers_into_60_fields",
        "1000 connectors",
        "stations per core",
        "100ms cycle: up to",
        "Model: ",
    ):
        assert phrase in done.stdout
