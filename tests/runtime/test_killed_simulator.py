"""`hubgate run` controlling the simulator (`hubgate sim --serve`, its own process), and the
simulator killed under it, as a power cut at the site's devices would: the loss of all nine
devices is one aggregated event, one line in `hubgate run`'s log and one entry in its records."""

from __future__ import annotations

import json
import re
import signal
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from hubgate.config.services import RECORDS_FILE
from hubgate.records.store import EventQuery, RecordStore
from hubgate.runtime.sim_process import SimProcess, open_sim_process
from hubgate.sim.wire_site import GRID_OPERATOR_BOX
from hubgate.state import EventCategory
from tests.support.ports import run_listening
from tests.support.wait import wait_until

HERE = Path(__file__).parent
SITE = HERE / "e2e-site.toml"
SCENARIO = HERE / "quiet-scenario.toml"  # the same site, every car plugged in, no events
HUBGATE = str(Path(sys.executable).parent / "hubgate")
DEVICES = 9
"""6 chargers (3 OCPP, 3 Modbus), 2 meters and the grid operator's box."""


def rewired_text(served: SimProcess) -> str:
    """The site file with every Modbus device at its simulated port and the OCPP listener on
    the port the simulated stations dial."""
    site = served.site
    ports = {c.id: c.modbus.port for c in site.chargers if c.modbus is not None}
    ports |= {m.id: m.modbus.port for m in site.meters}
    assert site.grid_operator is not None
    assert site.grid_operator.modbus is not None
    ports[GRID_OPERATOR_BOX] = site.grid_operator.modbus.port
    lines, device = [], ""
    for line in SITE.read_text().splitlines():
        if line.startswith("["):
            device = GRID_OPERATOR_BOX if line == "[grid_operator]" else ""
        elif found := re.fullmatch(r'id = "(.+)"', line):
            device = found.group(1)
        if line.startswith("modbus = "):
            line = re.sub(r"port = \d+", f"port = {ports[device]}", line)
        elif line == "port = 0" and device == "" and lines[-1] == "[ocpp]":
            line = f"port = {site.ocpp.port}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def logged_events(log: Path) -> list[dict[str, Any]]:
    lines = log.read_text().splitlines()
    return [e for line in lines if line.startswith("{") if (e := json.loads(line).get("event"))]


def unreachable(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["category"] == "device" and "unreachable" in e["message"]]


@pytest.mark.timeout(200)
async def test_a_killed_simulator_is_one_event_one_log_line_one_record(tmp_path: Path) -> None:
    site, log, out = tmp_path / "site.toml", tmp_path / "run.log", tmp_path / "run.txt"
    with trio.fail_after(180):
        async with open_sim_process(SCENARIO) as served:
            site.write_text(rewired_text(served))
            with log.open("wb") as stderr, out.open("wb") as stdout:
                run = await trio.lowlevel.open_process(
                    [HUBGATE, "run", str(site), "--log-format", "json", "--api-port", "0"],
                    stdout=stdout,
                    stderr=stderr,
                    cwd=tmp_path,  # the records file goes there
                )
            try:
                _, api_port = await wait_until(
                    lambda: run_listening(out), "`hubgate run` listening", 90
                )
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}") as api:

                    async def all_reachable() -> bool:
                        try:
                            devices = (await api.get("/api/v1/devices")).json()
                        except httpx.HTTPError:
                            return False  # not listening yet
                        return isinstance(devices, list) and (
                            sum(1 for d in devices if d["reachable"]) == DEVICES
                        )

                    await wait_until(all_reachable, "every device answering `hubgate run`", 90)
                before = len(logged_events(log))
                served.kill()
                await wait_until(
                    lambda: unreachable(logged_events(log)[before:]), "the loss in the log", 60
                )
            finally:
                run.send_signal(signal.SIGTERM)
                with trio.move_on_after(30):
                    await run.wait()
                run.kill()
    [event] = unreachable(logged_events(log)[before:])  # all nine in it: none can be lost again
    assert event["severity"] == "warning"
    assert event["message"].startswith(f"{DEVICES} devices unreachable on grid"), event
    assert len(event["members"]) == DEVICES
    assert run.returncode == 0, log.read_text()[-3000:]
    stored = RecordStore(tmp_path / RECORDS_FILE).events(EventQuery(category=EventCategory.DEVICE))
    since = [e for e in stored if e.id >= event["id"] and "unreachable" in e.message]
    assert [e.members for e in since] == [tuple(event["members"])]
