"""End to end on the real processes: the shipped charger zoo (examples/scenarios/charger-zoo.toml)
served by `hubgate sim --serve` and controlled by `hubgate run`, each in its own process.

100 simulated chargers dial `hubgate run`, 44 of them with a personality taken from a user
report (hubgate.sim.station_personalities); the gateway proxies them to the test CSMS
(tests/support/csms.py, its `[csms]`), the grid operator's box steps to 40 % from 60 s to
160 s and the test stops the CSMS from 100 s to 180 s, as the scenario says. The simulator
runs in real time and judges the site itself: no limit may be exceeded beyond the chargers'
reaction time. The API must name what each quirky charger does.

This is the zoo's one whole run in the suite. Here the site runs in real time, and on a
loaded machine when a DC charger with an EV gets its minimum is a matter of timing: that its
sessions start is tests/runtime/test_charger_zoo.py's (the zoo's DC chargers alone, the
simulation stepped with the gateway's cycles).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from hubgate.runtime.demo import free_port
from hubgate.sim.scenario_loader import LoadedScenario, load_scenario
from hubgate.sim.station_personalities import PersonalityName
from tests.support.csms import CsmsThread
from tests.support.wait import wait_until
from tests.support.zoo import assert_every_quirk_named

EXAMPLES = Path(__file__).parents[2] / "examples"
SCENARIO = EXAMPLES / "scenarios" / "charger-zoo.toml"
SITE = EXAMPLES / "sites" / "charger-zoo.toml"
HUBGATE = str(Path(sys.executable).parent / "hubgate")


def modbus_ports(loaded: LoadedScenario) -> list[int]:
    """Every Modbus device's port in the site file."""
    site = loaded.site
    endpoints = [c.modbus for c in site.chargers if c.modbus is not None]
    endpoints += [m.modbus for m in site.meters]
    if site.grid_operator is not None and site.grid_operator.modbus is not None:
        endpoints.append(site.grid_operator.modbus)
    return [e.port for e in endpoints]


def zoo_files(loaded: LoadedScenario, folder: Path, csms_url: str) -> tuple[Path, int, int]:
    """The zoo's site and scenario files in `folder`, every port (Modbus devices, OCPP, API)
    moved to a free one and the CSMS added; (scenario file, OCPP port, API port)."""
    site = loaded.site
    moved = {port: free_port() for port in [*modbus_ports(loaded), site.ocpp.port, site.api.port]}
    assert len(moved) == len(modbus_ports(loaded)) + 2, "one port per listener"
    text = re.sub(r"\bport = (\d+)\b", lambda m: f"port = {moved[int(m[1])]}", SITE.read_text())
    text += f'\n[csms]\nurl = "{csms_url}"\nqueue_path = "{folder / "queue.sqlite3"}"\n'
    served_site = folder / "charger-zoo.toml"
    served_site.write_text(text)
    scenario = folder / "charger-zoo-scenario.toml"
    scenario.write_text(
        SCENARIO.read_text().replace(
            'site = "../sites/charger-zoo.toml"', f'site = "{served_site}"'
        )
    )
    assert load_scenario(scenario).site.csms is not None
    return scenario, moved[site.ocpp.port], moved[site.api.port]


async def settled(api: httpx.AsyncClient, loaded: LoadedScenario) -> list[dict[str, Any]] | None:
    """The API's chargers once every OCPP charger is connected and booted (a slow booter's
    delay measured); None before."""
    chargers: list[dict[str, Any]] = (await api.get("/api/v1/chargers")).json()
    slow = {
        charger
        for charger, name in loaded.scenario.personalities.items()
        if name is PersonalityName.PENDING_BOOT
    }
    ready = all(
        c["connected"] and (c["id"] not in slow or c["boot_delay_s"] is not None) for c in chargers
    )
    return chargers if ready else None


@pytest.mark.timeout(600)
async def test_the_charger_zoo_under_hubgate_run_without_a_violation_every_quirk_named(
    tmp_path: Path,
) -> None:
    loaded = load_scenario(SCENARIO)
    duration = loaded.scenario.scenario.duration_s
    down = next(e for e in loaded.scenario.events if e.kind == "csms-down")
    assert down.duration_s is not None
    csms = CsmsThread()
    await trio.to_thread.run_sync(csms.start)
    scenario, ocpp_port, api_port = zoo_files(loaded, tmp_path, f"{csms.url}/ocpp")
    summary_file, sim_out = tmp_path / "summary.json", tmp_path / "sim.txt"
    with trio.fail_after(540), (tmp_path / "run.log").open("wb") as run_log:
        run = await trio.lowlevel.open_process(
            [
                HUBGATE,
                "run",
                str(scenario.parent / "charger-zoo.toml"),
                "--api-port",
                str(api_port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=run_log,
            cwd=tmp_path,  # its records and capabilities files go there
        )
        sim: trio.Process | None = None
        try:
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{api_port}", timeout=10
            ) as api:

                async def listening() -> bool:
                    try:
                        return (await api.get("/api/v1/chargers")).status_code == 200
                    except httpx.HTTPError:
                        return False

                await wait_until(listening, "`hubgate run` listening", 90)
                with sim_out.open("wb") as out:
                    sim = await trio.lowlevel.open_process(
                        [
                            HUBGATE,
                            "sim",
                            str(scenario),
                            "--serve",
                            "--csms",
                            f"ws://127.0.0.1:{ocpp_port}/ocpp",
                            "--meter-values",
                            "10",
                            "--status-every",
                            "20",
                            "--json",
                            str(summary_file),
                        ],
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                await wait_until(lambda: "served:" in sim_out.read_text(), "the zoo served", 120)
                started = time.monotonic()

                async def until(at_s: float) -> None:
                    await trio.sleep(max(0.0, started + at_s - time.monotonic()))

                await until(down.at_s)
                await trio.to_thread.run_sync(csms.stop)
                await until(down.at_s + down.duration_s)
                await trio.to_thread.run_sync(csms.start)
                await until(duration - 40)  # from now on every station should be connected
                chargers = await wait_until(
                    lambda: settled(api, loaded), "every charger connected and booted", 35
                )
                with trio.fail_after(120):
                    await sim.wait()
        finally:
            for process in (sim, run):
                if process is not None and process.returncode is None:
                    process.send_signal(signal.SIGTERM)
                    with trio.move_on_after(30):
                        await process.wait()
                    process.kill()
            await trio.to_thread.run_sync(csms.stop)

    print(sim_out.read_text())
    summary = json.loads(summary_file.read_text())
    assert summary["violations"] == [], summary
    assert run.returncode == 0, (tmp_path / "run.log").read_text()[-3000:]
    assert_every_quirk_named(loaded, chargers)
