"""End to end on the real processes: the shipped charger zoo (examples/scenarios/charger-zoo.toml)
served by `hubgate sim --serve` and controlled by `hubgate run`, each in its own process.

100 simulated chargers dial `hubgate run`, 44 of them with a personality taken from a user
report (hubgate.sim.station_personalities); the gateway proxies them to the test CSMS
(tests/support/csms.py, its `[csms]`), the grid operator's box steps to 40 % and the test
stops the CSMS, as the scenario says, on a timeline 45 s shorter than the shipped one
(`SHORTER`). The simulator runs in real time and judges the site itself: no limit may be
exceeded beyond the chargers' reaction time. The API must name what each quirky charger does.

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

from hubgate.sim.scenario_loader import LoadedScenario, load_scenario
from hubgate.sim.station_personalities import PersonalityName
from tests.support.csms import CsmsThread
from tests.support.ports import HeldPorts, run_listening
from tests.support.wait import wait_until
from tests.support.zoo import assert_every_quirk_named

EXAMPLES = Path(__file__).parents[2] / "examples"
SCENARIO = EXAMPLES / "scenarios" / "charger-zoo.toml"
SITE = EXAMPLES / "sites" / "charger-zoo.toml"
HUBGATE = str(Path(sys.executable).parent / "hubgate")
SHORTER = {
    "duration_s = 240": "duration_s = 195",
    'at_s = 60\nkind = "grid-limit"\npercent = 40\nduration_s = 100': (
        'at_s = 40\nkind = "grid-limit"\npercent = 40\nduration_s = 90'
    ),
    'at_s = 100\nkind = "csms-down"\nduration_s = 80': (
        'at_s = 70\nkind = "csms-down"\nduration_s = 90'
    ),
}
"""The zoo's timeline, in real time here, made 45 s shorter: the 40 % step from 40 s to 130 s
(shipped: 60-160 s), the CSMS away from 70 s to 160 s (100-180 s), the end at 195 s (240 s).
Every event still comes, for at least as long, and the rebooters' reboot 150 s after their
boot still falls inside the CSMS outage; the test awaits the reboots instead of a time."""


def modbus_ports(loaded: LoadedScenario) -> list[int]:
    """Every Modbus device's port in the site file."""
    site = loaded.site
    endpoints = [c.modbus for c in site.chargers if c.modbus is not None]
    endpoints += [m.modbus for m in site.meters]
    if site.grid_operator is not None and site.grid_operator.modbus is not None:
        endpoints.append(site.grid_operator.modbus)
    return [e.port for e in endpoints]


def zoo_files(loaded: LoadedScenario, folder: Path, csms_url: str, held: HeldPorts) -> Path:
    """The zoo's site and scenario files in `folder` (returns the scenario): every Modbus
    device on one of the `held` ports, the OCPP and API listeners on any free port (0), the
    CSMS added."""
    site = loaded.site
    moved = dict(zip(modbus_ports(loaded), held.ports, strict=True))
    moved |= {site.ocpp.port: 0, site.api.port: 0}
    assert len(moved) == len(held.ports) + 2, "one port per listener"
    text = re.sub(r"\bport = (\d+)\b", lambda m: f"port = {moved[int(m[1])]}", SITE.read_text())
    text += f'\n[csms]\nurl = "{csms_url}"\nqueue_path = "{folder / "queue.sqlite3"}"\n'
    served_site = folder / "charger-zoo.toml"
    served_site.write_text(text)
    scenario = folder / "charger-zoo-scenario.toml"
    text = SCENARIO.read_text()
    for shipped, shorter in {
        **SHORTER,
        'site = "../sites/charger-zoo.toml"': f'site = "{served_site}"',
    }.items():
        assert text.count(shipped) == 1, f"{SCENARIO} changed: {shipped!r}"
        text = text.replace(shipped, shorter)
    scenario.write_text(text)
    assert load_scenario(scenario).site.csms is not None
    return scenario


async def settled(api: httpx.AsyncClient, loaded: LoadedScenario) -> list[dict[str, Any]] | None:
    """The API's chargers once every OCPP charger is connected and booted (a slow booter's
    delay measured, a rebooter back from its reboot); None before."""
    chargers: list[dict[str, Any]] = (await api.get("/api/v1/chargers")).json()
    personalities = loaded.scenario.personalities

    def ready(charger: dict[str, Any]) -> bool:
        name = personalities.get(charger["id"])
        if name is PersonalityName.PENDING_BOOT:
            return charger["connected"] and charger["boot_delay_s"] is not None
        if name is PersonalityName.REBOOTS:
            return charger["connected"] and charger["boots"] >= 2
        return bool(charger["connected"])

    return chargers if all(ready(c) for c in chargers) else None


@pytest.mark.timeout(600)
async def test_the_charger_zoo_under_hubgate_run_without_a_violation_every_quirk_named(
    tmp_path: Path,
) -> None:
    csms = CsmsThread()
    await trio.to_thread.run_sync(csms.start)
    shipped = load_scenario(SCENARIO)
    held = HeldPorts(len(modbus_ports(shipped)))  # until the simulator listens on them
    scenario = zoo_files(shipped, tmp_path, f"{csms.url}/ocpp", held)
    loaded = load_scenario(scenario)  # the shorter timeline
    down = next(e for e in loaded.scenario.events if e.kind == "csms-down")
    assert down.duration_s is not None
    summary_file, sim_out, run_out = (tmp_path / f for f in ("summary.json", "sim.txt", "run.txt"))
    with (
        trio.fail_after(540),
        held,
        run_out.open("wb") as run_stdout,
        (tmp_path / "run.log").open("wb") as run_log,
    ):
        run = await trio.lowlevel.open_process(
            [HUBGATE, "run", str(scenario.parent / "charger-zoo.toml")],
            stdout=run_stdout,
            stderr=run_log,
            cwd=tmp_path,  # its records and capabilities files go there
        )
        sim: trio.Process | None = None
        try:
            ocpp_port, api_port = await wait_until(
                lambda: run_listening(run_out), "`hubgate run` listening", 90
            )
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{api_port}", timeout=10
            ) as api:
                held.release()
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
                chargers = await wait_until(  # before the end, as the shipped timeline did
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
