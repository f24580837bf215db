"""End to end: the shipped charger zoo (examples/scenarios/charger-zoo.toml) under the gateway.

100 simulated chargers dial the gateway, 44 of them with a personality taken from a user
report (hubgate.sim.station_personalities), the gateway proxies them to the test CSMS
(tests/support/csms.py), the grid operator steps to 40 % from 60 s to 160 s and the CSMS
is away from 100 s to 180 s. No limit may be exceeded beyond the chargers' reaction time, and the
API must name what each quirky charger does. The same against `hubgate run`, each in its own
process and in real time: test_charger_zoo_run.py.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import trio

from hubgate.backoff import Backoff
from hubgate.cloud.proxy import ProxySettings
from hubgate.config.services import Csms
from hubgate.runtime.demo import Demo, simulated_site
from hubgate.runtime.gateway import open_gateway
from hubgate.sim.scenario_loader import load_scenario
from hubgate.sim.station_personalities import PersonalityName
from hubgate.sim.wire_site import WireSite
from tests.support.csms import CsmsThread
from tests.support.e2e import run_for, until_connected
from tests.support.zoo import assert_every_quirk_named, by_personality

SCENARIO = Path(__file__).parents[2] / "examples" / "scenarios" / "charger-zoo.toml"
FAST = ProxySettings(
    backoff=Backoff(initial_s=0.05, maximum_s=0.5),
    connect_timeout_s=2.0,
    first_connect_wait_s=2.0,
    replay_retry_s=0.2,
)


def sessions_started(site: WireSite) -> set[str]:
    """The OCPP chargers with a connector that started a transaction."""
    return {s.charger.id for s in site.stations if any(c.tx_generation for c in s.connectors)}


@pytest.mark.timeout(900)
async def test_the_charger_zoo_runs_without_a_violation_and_every_quirk_is_named(
    tmp_path: Path,
) -> None:
    loaded = load_scenario(SCENARIO)
    duration = round(loaded.scenario.scenario.duration_s)
    down = next(e for e in loaded.scenario.events if e.kind == "csms-down")
    assert down.duration_s is not None
    csms = CsmsThread()
    await trio.to_thread.run_sync(csms.start)
    try:
        with trio.fail_after(850), simulated_site(loaded, meter_values_s=10) as (sim, site):
            proxied = site.model_copy(
                update={"csms": Csms(url=f"{csms.url}/ocpp", queue_path=str(tmp_path / "q.db"))}
            )
            async with open_gateway(proxied, csms_settings=FAST) as gateway:
                demo = Demo(sim, gateway)
                await until_connected(demo, 80)
                await run_for(demo, round(down.at_s))
                await trio.to_thread.run_sync(csms.stop)
                await run_for(demo, round(down.duration_s))
                await trio.to_thread.run_sync(csms.start)
                await run_for(demo, duration - round(down.at_s + down.duration_s))
                url = f"http://127.0.0.1:{gateway.ports['api']}/api/v1/chargers"
                async with httpx.AsyncClient() as client:
                    chargers = (await client.get(url, timeout=10)).json()
                summary = await demo.summary()
                started = await trio.to_thread.run_sync(
                    sim.call, lambda: sessions_started(sim.site)
                )
                with trio.move_on_after(10, shield=True):
                    await gateway.shutdown()
    finally:
        await trio.to_thread.run_sync(csms.stop)

    print(summary.to_text())
    assert summary.violations == ()
    assert_every_quirk_named(loaded, chargers)
    dc = by_personality(loaded, chargers)[str(PersonalityName.DC_MIN_POWER)]
    # Given 0 W while idle, they would show NoFreePower and start no session, ever: held at
    # their minimum, the ones an EV came to (two, with this seed) started.
    assert {c["id"] for c in dc} & started
