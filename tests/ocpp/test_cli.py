"""`hubgate ocpp serve`: a real process, a real charge point, status lines, Ctrl-C."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import trio
from ocpp.v16 import call

from hubgate.config.loader import load_site
from tests.support.charge_points import ChargePointThread, Cp16, now_text


async def test_serve_reports_a_charging_station(examples_dir: Path) -> None:
    site_file = examples_dir / "sites" / "small-4.toml"
    site = load_site(site_file)
    total = sum(1 for c in site.chargers if c.ocpp is not None)
    command = [str(Path(sys.executable).parent / "hubgate"), "ocpp", "serve", str(site_file)]
    with subprocess.Popen(
        [*command, "--port", "0", "--status-every", "0.1", "--limit-a", "10"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdout is not None
        try:
            with trio.fail_after(20):
                first = await trio.to_thread.run_sync(process.stdout.readline)
                assert first.startswith("listening on ws://127.0.0.1:")
                url = first.split()[-1].replace("<identity>", "CP-0002")
                cp = ChargePointThread(Cp16, url, subprotocols=["ocpp1.6"])
                await trio.to_thread.run_sync(cp.start)
                try:
                    start = call.StartTransaction(
                        connector_id=1, id_tag="T", meter_start=0, timestamp=now_text()
                    )
                    tx = await trio.to_thread.run_sync(cp.call, start)
                    sample = {"value": "7.4", "measurand": "Power.Active.Import", "unit": "kW"}
                    values = call.MeterValues(
                        connector_id=1,
                        transaction_id=tx.transaction_id,
                        meter_value=[{"timestamp": now_text(), "sampledValue": [sample]}],
                    )
                    await trio.to_thread.run_sync(cp.call, values)
                    expected = f"1/{total} charge points online, 1 transactions, 7.4 kW\n"
                    while (await trio.to_thread.run_sync(process.stdout.readline)) != expected:
                        pass
                    profiles = await trio.to_thread.run_sync(
                        cp.cp.wait_received, "SetChargingProfile", 2
                    )
                    limits = [
                        p["charging_schedule"]["charging_schedule_period"][0]["limit"]
                        for p in profiles
                    ]
                    assert [float(x) for x in limits[:2]] == [site.control.failsafe_current_a, 10]
                    assert "valid_to" in profiles[1]
                finally:
                    await trio.to_thread.run_sync(cp.stop)
        finally:
            process.send_signal(signal.SIGINT)
            rest, errors = await trio.to_thread.run_sync(process.communicate)
    assert process.returncode == 0
    assert rest.endswith("stopped\n")
    assert "CP-0002: connected with OCPP 1.6" in errors
    assert "Traceback" not in errors


def test_a_taken_port_is_a_clear_error(examples_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        hubgate = str(Path(sys.executable).parent / "hubgate")
        site = str(examples_dir / "sites" / "small-4.toml")
        done = subprocess.run(
            [hubgate, "ocpp", "serve", site, "--port", port],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert done.returncode == 1
    assert done.stderr.startswith("hubgate: error: ")
    assert "Traceback" not in done.stderr
