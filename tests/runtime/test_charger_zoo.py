"""End to end: the shipped charger zoo (examples/scenarios/charger-zoo.toml) under the gateway.

100 simulated chargers dial the gateway, 44 of them with a personality taken from a user
report (hubgate.sim.station_personalities), the gateway proxies them to the test CSMS
(tests/support/csms.py), the grid operator steps to 40 % from 60 s to 160 s and the CSMS
is away from 100 s to 180 s. No limit may be exceeded beyond the chargers' reaction time, and the
API must name what each quirky charger does.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

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

SCENARIO = Path(__file__).parents[2] / "examples" / "scenarios" / "charger-zoo.toml"
FAST = ProxySettings(
    backoff=Backoff(initial_s=0.05, maximum_s=0.5),
    connect_timeout_s=2.0,
    first_connect_wait_s=2.0,
    replay_retry_s=0.2,
)


def by_personality(loaded: Any, chargers: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The API's chargers grouped by the scenario's personality ("book": none)."""
    names = loaded.scenario.personalities
    grouped: dict[str, list[dict[str, Any]]] = {}
    for charger in chargers:
        grouped.setdefault(str(names.get(charger["id"], "book")), []).append(charger)
    return grouped


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
    zoo = by_personality(loaded, chargers)
    assert set(zoo) == {*(str(p) for p in loaded.scenario.personalities.values()), "book"}

    def each(name: PersonalityName) -> list[dict[str, Any]]:
        found = zoo[str(name)]
        assert len(found) == 4
        for charger in found:
            print(name, json.dumps(charger))
        return found

    def trusted(charger: dict[str, Any], unit: str = "A") -> None:
        """Its quirk is no reason to distrust it: its checks say it follows, in its unit."""
        for connector in charger["connectors"]:
            assert connector["status"] == "following", connector
            assert f" {unit}" in connector["evidence"], connector

    for charger in each(PersonalityName.W_ONLY):
        assert charger["capabilities"]["rate_units"] == ["W"]
        trusted(charger, "W")
    for charger in each(PersonalityName.CHARGE_POINT_MAX_ONLY):
        assert [c["shared"] for c in charger["connectors"]] == [True, True]
        assert {c["purpose"] for c in charger["connectors"]} <= {
            "ChargePointMaxProfile",
            "ChargingStationMaxProfile",
        }
    for charger in each(PersonalityName.IGNORES_VALID_TO):
        assert charger["capabilities"]["honours_valid_to"] is False
        assert charger["connectors"][0]["lease"] == "schedule"
        trusted(charger)
    for charger in each(PersonalityName.ONE_STACK_LEVEL):
        assert charger["capabilities"]["max_stack_level"] == 0
        assert charger["connectors"][0]["lease"] == "schedule"
        trusted(charger)
    for charger in each(PersonalityName.ENERGY_ONLY_60S):
        provisioning = charger["provisioning"]
        assert provisioning["measurands"] is None
        refused = set(provisioning["rejected"])
        assert refused & {"MeterValueSampleInterval", "SampledDataCtrlr.TxUpdatedInterval"}
    for charger in each(PersonalityName.CLOCK_7_MIN_OFF):
        assert math.isclose(charger["capabilities"]["clock_offset_s"], -420, abs_tol=5)
    for charger in each(PersonalityName.IGNORES_PROFILES):
        (connector,) = charger["connectors"]
        assert connector["status"] == "not following"
        # its composite schedule shows its own maximum, or its EV draws it under a lower limit
        assert connector["evidence"].startswith(("applies 32 A where", "draws 32.0 A under"))
    for charger in each(PersonalityName.PENDING_BOOT):
        assert charger["boot_delay_s"] is not None
        assert charger["boot_delay_s"] > 3
    for charger in each(PersonalityName.REBOOTS):
        assert charger["boots"] >= 2
    for charger in each(PersonalityName.PHASE_SWITCH_PAUSE):
        assert charger["capabilities"]["phase_switch"] is True
    dc = each(PersonalityName.DC_MIN_POWER)
    assert all(charger["capabilities"]["rate_units"] == ["W"] for charger in dc)
    # Given 0 W while idle, they would show NoFreePower and start no session, ever: held
    # at their minimum, the ones an EV came to (two, with this seed) started.
    assert {c["id"] for c in dc} & started
    book = zoo["book"]
    assert len(book) == 46
    statuses = {c["status"] for charger in book for c in charger["connectors"]}
    assert statuses == {"following"}
