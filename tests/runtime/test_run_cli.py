"""`hubgate run`: starts every service, stops on SIGTERM with chargers commanded, exit 0."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hubgate.config.services import RECORDS_FILE
from hubgate.records.store import EventQuery, RecordStore

SITE = Path(__file__).parent / "e2e-site.toml"
HUBGATE = str(Path(sys.executable).parent / "hubgate")


@pytest.mark.timeout(180)  # at load 17 on 2 cores: the dashboard line at 20 s, the event at 40 s
def test_run_starts_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    """None of the site's devices is there: one aggregated event says so in the log (JSON
    lines here) and in the records file beside it, and the run still ends cleanly."""
    process = subprocess.Popen(
        [HUBGATE, "run", str(SITE), "--log-format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,  # the records file goes to the working directory (no [csms])
    )
    unreachable: dict[str, Any] = {}
    try:
        assert process.stdout is not None
        assert process.stderr is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("dashboard: http://127.0.0.1:"):
                break
        logged = []
        for line in process.stderr:  # bounded by the test's timeout
            logged.append(line)
            event = json.loads(line).get("event", {})
            if event.get("category") == "device" and "unreachable" in event["message"]:
                unreachable = event
                break
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert lines[0].startswith("e2e: OCPP on ws://127.0.0.1:")
    # the site's chargers are not there: none could be commanded, and that is reported
    assert "stopped: 0/6 connectors commanded to the failsafe current" in out
    # one event for the whole outage, listing every device, logged before anything else
    assert unreachable["severity"] == "warning", logged
    assert unreachable["message"].startswith("9 devices unreachable on grid"), unreachable
    assert len(unreachable["members"]) == 9
    stored = RecordStore(tmp_path / RECORDS_FILE).events(EventQuery())
    assert stored[0].category == "config"
    assert [e.members for e in stored if e.category == "device"] == [tuple(unreachable["members"])]


def test_run_with_a_broken_site_file_exits_2(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text("[site]\nname = 'x'\n[grid]\nphase_current_limit_a = -1\n")
    result = subprocess.run(
        [HUBGATE, "run", str(site)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "phase_current_limit_a" in result.stderr


def held_port() -> socket.socket:
    """A listening socket on a free loopback port: another program holding it."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    return holder


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HUBGATE, "run", *args], capture_output=True, text=True, timeout=60, check=False, cwd=cwd
    )


def test_a_port_another_program_holds_ends_run_with_one_line(tmp_path: Path) -> None:
    """Not a restart loop with tracebacks: exit 1 with what, where and why."""
    with held_port() as holder:
        port = holder.getsockname()[1]
        result = run_cli(str(SITE), "--api-port", str(port), cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert result.stderr == (
        f"hubgate: error: api cannot listen on 127.0.0.1:{port}: Address already in use; stop "
        "the program that holds it or pick another port ([api] port or --api-port; 0 takes any "
        "free one)\n"
    )


def test_an_address_not_of_this_machine_is_named_not_a_port_to_free(tmp_path: Path) -> None:
    """`run --check` and the gateway's start give the fix the error calls for (an address of
    this machine), not the one for a port in use."""
    site = tmp_path / "site.toml"
    site.write_text(SITE.read_text().replace("[api]\nport = 0", '[api]\nhost = "192.0.2.1"'))
    fix = "Cannot assign requested address; '192.0.2.1' is no address of this machine"
    checked = run_cli(str(site), "--check", "--api-port", "18099")
    assert checked.returncode == 2
    assert f"api.port: cannot listen on 192.0.2.1:18099: {fix}" in checked.stderr
    started = run_cli(str(site), "--api-port", "18099", cwd=tmp_path)
    assert started.returncode == 1, started.stderr
    assert f"api cannot listen on 192.0.2.1:18099: {fix}" in started.stderr
    assert "stop the program" not in checked.stderr + started.stderr


def test_check_passes_a_site_that_can_run() -> None:
    result = run_cli(str(SITE), "--check")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{SITE}: ok (6 chargers, 6 Modbus devices)\n"


def test_check_finds_a_held_port_a_bad_host_and_a_missing_serial_device(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    text = SITE.read_text().replace(
        'host = "127.0.0.1", port = 15204', 'host = "plc_1", port = 15204'
    )
    text += '\n[[meters]]\nid = "rtu"\nnode = "board"\n'
    text += 'modbus = { profile = "eastron-sdm630", serial = { device = "/dev/ttyNONE7" } }\n'
    site.write_text(text)
    with held_port() as holder:
        port = holder.getsockname()[1]
        result = run_cli(str(site), "--check", "--api-port", str(port))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[-1] == "3 problems found"
    assert f"api.port: cannot listen on 127.0.0.1:{port}: Address already in use" in lines[0]
    assert "chargers[3].modbus.host: 'plc_1' is neither an IP address nor a host name" in lines[1]
    assert "meters[2].modbus.serial.device: serial device /dev/ttyNONE7 does not exist" in lines[2]


def test_an_api_port_override_on_the_ocpp_port_is_a_configuration_error(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text(SITE.read_text().replace("[ocpp]\nport = 0", "[ocpp]\nport = 9411"))
    result = run_cli(str(site), "--api-port", "9411", cwd=tmp_path)
    assert result.returncode == 2
    assert "api.port: port 9411 is also the OCPP listener's (ocpp.port)" in result.stderr


def test_run_help_names_the_operator_options() -> None:
    text = subprocess.run(
        [HUBGATE, "run", "--help"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    for option in ("--log-level", "--api-port", "--check"):
        assert option in text
