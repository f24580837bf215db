"""Freshness in the API: a stalled OCPP charger's reading ages and is shown stale, while the
others stay fresh; its health shows its silence. Its charging session is on record.

Real peers: the simulator's OCPP stations (the `ocpp` package) dialling the gateway; one
of them hangs with its connection open (`Station.stalled`: it sends nothing and answers
no call), as a frozen charger controller does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from hubgate.runtime.demo import Demo, open_demo
from hubgate.runtime.gateway import dashboard_url
from hubgate.sim.scenario_loader import load_scenario
from tests.support.e2e import run_for, until_connected

SCENARIO = Path(__file__).parent / "e2e-scenario.toml"
STALLED, FRESH = ("cp-1", 1), ("cp-3", 1)


async def run_until(demo: Demo, check: Any, what: str, seconds: int = 60) -> None:
    """`run_for` one simulated second at a time until the async `check` passes."""
    for _ in range(seconds):
        if await check():
            return
        await run_for(demo, 1)
    raise AssertionError(f"{what}: not within {seconds} simulated s")


@pytest.mark.timeout(240)
async def test_a_stalled_ocpp_charger_is_shown_stale_with_its_age() -> None:
    loaded = load_scenario(SCENARIO)
    with trio.fail_after(200):
        async with open_demo(loaded) as demo:
            gateway = demo.gateway
            url = dashboard_url(gateway.site, gateway.ports["api"])
            async with httpx.AsyncClient(base_url=f"{url}api/v1", timeout=10) as api:

                async def connector(key: tuple[str, int]) -> dict[str, Any]:
                    response = await api.get(f"/connectors/{key[0]}/{key[1]}")
                    response.raise_for_status()
                    return dict(response.json())

                async def device(key: tuple[str, int]) -> dict[str, Any]:
                    devices = (await api.get("/devices")).json()
                    return next(d for d in devices if d["id"] == f"{key[0]}#{key[1]}")

                async def charging_fresh() -> bool:
                    response = await api.get(f"/connectors/{STALLED[0]}/{STALLED[1]}")
                    if response.status_code == 503:  # no control cycle has run yet
                        return False
                    response.raise_for_status()
                    c = response.json()
                    return c["measured_a"] is not None and c["stale"] is False

                await until_connected(demo, 3)

                async def session_with_its_id() -> bool:
                    """cp-1's open session carries its TransactionEvent's id (which may come
                    a cycle after its first fresh reading)."""
                    going = (await api.get("/sessions", params={"open": "true"})).json()
                    return any(
                        s["connector"] == "cp-1#1" and s["transaction_id"] is not None
                        for s in going
                    )

                await run_until(demo, charging_fresh, "cp-1 charging with a fresh reading")
                await run_until(demo, session_with_its_id, "cp-1's session with its id", 3)
                before = await device(STALLED)
                assert before["protocol"] == "ocpp"
                assert before["last_message_age_s"] is not None
                assert before["messages_per_min"] > 0
                assert before["requests"] > 0
                assert before["latency_p50_ms"] is not None

                def stall() -> None:
                    station = next(
                        s for s in demo.sim_site.site.stations if s.charger.id == STALLED[0]
                    )
                    station.stalled = True

                await trio.to_thread.run_sync(demo.sim_site.call, stall)

                async def stale() -> bool:
                    return (await connector(STALLED))["stale"] is True

                await run_until(demo, stale, "cp-1's reading shown stale")
                stalled, other = await connector(STALLED), await connector(FRESH)
                limit = gateway.loop.devices.chargers[STALLED].stale_after_s  # type: ignore[attr-defined]
                assert stalled["measured_age_s"] > limit
                assert stalled["measured_a"] is not None  # still shown, with its age
                assert other["measured_age_s"] < limit
                silent = await device(STALLED)
                assert silent["last_message_age_s"] > limit
