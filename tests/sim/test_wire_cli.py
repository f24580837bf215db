"""`hubgate sim --serve`: the site on loopback from the command line, with its listing."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from hubgate.cli import main
from hubgate.cli.common import EXIT_BAD_INPUT, EXIT_FAILURE
from tests.support.wait import wait_until_blocking
from tests.support.wire import client, read_f32, write_wire_scenario

SDM_CURRENTS = 0x0006


def test_serve_lists_the_devices_and_answers_while_it_runs(tmp_path: Path) -> None:
    scenario = write_wire_scenario(tmp_path)
    listing = tmp_path / "listing.json"
    hubgate = Path(sys.executable).parent / "hubgate"
    command = [str(hubgate), "sim", str(scenario), "--serve"]
    command += ["--ports", "auto", "--speed", "10", "--duration", "30", "--listing", str(listing)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:

        def listed() -> bool:
            assert process.poll() is None, process.communicate()
            return listing.exists() and listing.read_text().endswith("\n")

        wait_until_blocking(listed, "the listing", timeout_s=20)
        served = json.loads(listing.read_text())
        boxes = {box["id"]: box for box in served["modbus"]}
        assert boxes.keys() == {"wb", "meter", "grid-operator"}
        assert boxes["wb"]["units"][:2] == [1, 2]
        assert served["ocpp"] == []  # no --csms: the OCPP stations stay home
        meter = client(boxes["meter"]["port"])
        wait_until_blocking(  # a few simulated seconds: the EVs draw
            lambda: sum(read_f32(meter, SDM_CURRENTS, 3, 1, input=True)) > 50,
            "the meter to see the EVs draw",
        )
        meter.close()
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "modbus meter" in out
    assert "simulated 30 s" in out  # the recorder's summary at the end


IGNORING_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)
"""Runs its arguments with SIGINT ignored, as a shell script's background job starts."""


@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    ("serve", "number"),
    [(True, signal.SIGINT), (True, signal.SIGTERM), (False, signal.SIGTERM)],
    ids=["serve-SIGINT", "serve-SIGTERM", "in-process-SIGTERM"],
)
def test_a_signal_ends_the_simulation_with_its_summary_even_with_sigint_ignored(
    tmp_path: Path, serve: bool, number: signal.Signals
) -> None:
    """Started with SIGINT ignored, the simulator still stops at once on SIGINT or SIGTERM
    and prints the summary so far; served, its stations were dialling a CSMS that accepts
    the connection and never answers."""
    scenario = write_wire_scenario(tmp_path)
    listing, out = tmp_path / "listing.json", tmp_path / "out.txt"
    hubgate = Path(sys.executable).parent / "hubgate"
    command = [sys.executable, "-c", IGNORING_SIGINT, str(hubgate), "sim", str(scenario)]
    command += ["--speed", "1", "--duration", "3600", "--status-every", "1"]
    with socket.socket() as mute_csms:
        mute_csms.bind(("127.0.0.1", 0))
        mute_csms.listen()
        if serve:
            port = mute_csms.getsockname()[1]
            command += ["--serve", "--ports", "auto", "--listing", str(listing)]
            command += ["--csms", f"ws://127.0.0.1:{port}/ocpp"]
        with out.open("w") as stdout:
            process = subprocess.Popen(command, stdout=stdout, stderr=subprocess.STDOUT)
        try:

            def running() -> bool:
                assert process.poll() is None, out.read_text()
                return "t=" in out.read_text()

            wait_until_blocking(running, "the simulation to run", timeout_s=30)
            process.send_signal(number)
            process.wait(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    text = out.read_text()
    assert process.returncode == 0, text
    assert "interrupted at t=" in text
    assert "simulated " in text  # the recorder's summary


def test_serve_options_need_serve(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = write_wire_scenario(tmp_path)
    assert main(["sim", str(scenario), "--csms", "ws://127.0.0.1:9"]) == EXIT_BAD_INPUT
    assert "--serve" in capsys.readouterr().err


def test_a_taken_port_is_a_clear_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = write_wire_scenario(tmp_path)
    (tmp_path / "site.toml").write_text(SHARED_PORT_SITE)  # one port, two boxes to serve
    assert main(["sim", str(scenario), "--serve", "--duration", "1"]) == EXIT_FAILURE
    assert "'pv' and 'meter' both want port 502" in capsys.readouterr().err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        (tmp_path / "site.toml").write_text(TAKEN_SITE.format(port=port))
        assert main(["sim", str(scenario), "--serve", "--duration", "1"]) == EXIT_FAILURE
    assert f"meter 'meter' cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


SHARED_PORT_SITE = """\
[site]
name = "one port"

[grid]
phase_current_limit_a = 100

[[meters]]
id = "meter"
node = "grid"
modbus = { profile = "eastron-sdm630", host = "127.0.0.1", unit = 1 }

[[pv]]
id = "pv"
modbus = { profile = "sunspec-inverter", host = "127.0.0.1", unit = 2 }
peak_kw = 20
"""
"""A valid site (a meter and a PV inverter behind one Modbus gateway) that the simulator
cannot serve: it gives each device a port of its own."""

TAKEN_SITE = """\
[site]
name = "taken port"

[grid]
phase_current_limit_a = 100

[[chargers]]
id = "cp16"
node = "grid"
ocpp = {{ identity = "SIM-16" }}
connectors = [{{ id = 1, max_current_a = 32 }}]

[[meters]]
id = "meter"
node = "grid"
modbus = {{ profile = "eastron-sdm630", host = "127.0.0.1", port = {port} }}
"""
