"""End to end on the wire: hubgate curtails an SMA Sunny Tripower over Modbus, keeps its
lease and fallback, and the inverter holds the feed-in when the gateway is gone.

The simulator serves the SMA profile's registers (40016 cap in % of PMAX 30231; 41193
mode for absent limitation, 41195 its timeout, 41197 the fallback in % of PMAX, TI-en-15
5.4 / TI-en-28), an SDM630 grid meter, the grid operator's relay box with the §9 EEG
feed-in contacts and one Alfen charger. At noon the 60 kW roof gives far more than the
site uses; the site may feed in 6 kW (`export_limit_kw`). Then the box closes W3 (no
feed-in at all): the cap and the fallback follow. Last the gateway stops: past the
lease the inverter runs on the fallback it was given, 0 % while W3 is closed (with the
export limit alone it would be 10 % of PMAX); it tells the inverter so as it stops, so
the EV's drop to the failsafe current is not fed into the grid until the lease runs out.
Simulated time runs at the gateway's rate.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
import trio

from hubgate.runtime.demo import simulated_site
from hubgate.runtime.gateway import open_gateway
from hubgate.sim.engine import Simulation
from hubgate.sim.register_feed import pv_cap_kw
from hubgate.sim.scenario_loader import load_scenario
from hubgate.sim.serving import SiteThread
from tests.support.toml_tables import (
    connector_32a,
    meter,
    modbus,
    modbus_charger,
    occupied_site_scenario,
)

PEAK_KW = 60.0
EXPORT_KW = 6.0
LEASE_S = 6.0
CYCLE_S = 0.25
T = TypeVar("T")

SITE = (
    f"""\
[site]
name = "e2e pv fallback"

[grid]
phase_current_limit_a = 100
power_limit_kw = 60
export_limit_kw = {EXPORT_KW}

"""
    + modbus_charger("cp-1", "grid", modbus("alfen-eve", port=1501), connector_32a())
    + meter("meter-grid", "grid", modbus("eastron-sdm630", port=1502))
    + f"""
[[pv]]
id = "roof"
modbus = {modbus("sma-sunny-tripower", port=1503, unit=3)}
peak_kw = {PEAK_KW}

[grid_operator]
source = "relay-contacts"
modbus = {modbus("grid-operator-14a-relays", port=1504)}

[control]
cycle_s = {CYCLE_S}
lease_s = {LEASE_S}
meter_stale_s = 1
"""
)

SCENARIO = occupied_site_scenario(
    "e2e: SMA curtailment, W3, gateway gone", seed=4, start_hour=12, base_load_a=10, step_s=0.25
) + (
    """
[[events]]
at_s = 16
kind = "feed-in-limit"
percent = 0
duration_s = 500
"""
)


SMA_PATHS = (
    "commands.power_limit",
    "failsafe.timeout.enable",
    "failsafe.timeout",
    "failsafe.fallback",
)
Sample = tuple[float, float, float, float | None]


def sample(sim: Simulation) -> Sample:
    """(time, grid power W (negative: fed in), PV output W, the cap in force kW)."""
    (pv,) = sim.pv
    return (sim.now, sum(sim.node_current()) * sim.tree.voltage_v, pv.power_kw * 1000, pv.cap_kw)


def sma_registers(site: SiteThread) -> dict[str, float | str | None]:
    """What the simulated inverter holds: cap (%), timeout mode, timeout (s), fallback (%)."""
    device = site.site.boxes["roof"].devices[0].device
    return {path: device.value(path) for path in SMA_PATHS}


async def run(site: SiteThread, seconds: float, *, paced: bool = True) -> list[Sample]:
    """Advance simulated time a cycle at a time (a cycle of wall time each while `paced`)."""
    samples: list[Sample] = []
    for _ in range(round(seconds / CYCLE_S)):
        if paced:
            await trio.sleep(CYCLE_S)
        await trio.to_thread.run_sync(site.advance, CYCLE_S)
        samples.append(await on_site(site, lambda: sample(site.site.sim)))
    return samples


async def on_site(site: SiteThread, read: Callable[[], T]) -> T:
    """`read` run on the simulated site's own thread."""
    return await trio.to_thread.run_sync(site.call, read)


@pytest.mark.timeout(90)
async def test_an_sma_inverter_is_capped_leased_and_falls_back_to_the_closed_contact(
    tmp_path: Path,
) -> None:
    (tmp_path / "site.toml").write_text(SITE)
    (tmp_path / "scenario.toml").write_text(SCENARIO)
    with (
        trio.fail_after(75),
        simulated_site(load_scenario(tmp_path / "scenario.toml")) as (
            site,
            config,
        ),
    ):
        async with open_gateway(config) as gateway:
            free = await run(site, 16)
            exporting = await on_site(site, lambda: sma_registers(site))
            closed = await run(site, 10)
            held = await on_site(site, lambda: sma_registers(site))
            balance = gateway.loop.energy.balance()
            await gateway.shutdown()
        gone = await run(site, LEASE_S + 4, paced=False)
        cap_gone = await on_site(site, lambda: pv_cap_kw(site.site.boxes["roof"].devices[0]))
        summary = await on_site(site, site.site.sim.recorder.summary)

    assert summary.violations == ()
    settled = [s for s in free if s[0] >= 8]
    assert all(s[3] is not None for s in settled)  # capped on the wire
    assert max(s[2] for s in settled) < PEAK_KW * 1000 * 0.8  # the roof could give more
    assert min(s[1] for s in settled) >= -EXPORT_KW * 1000 - 1_000  # feed-in held at 6 kW
    assert min(s[1] for s in settled) <= -EXPORT_KW * 1000 + 2_500  # ... and used, not 0
    assert exporting["failsafe.timeout.enable"] == 2507  # 'use fallback setting'
    assert exporting["failsafe.timeout"] == LEASE_S
    assert exporting["failsafe.fallback"] == pytest.approx(EXPORT_KW / PEAK_KW * 100, abs=0.01)
    assert isinstance(exporting["commands.power_limit"], float)

    # W3 closed: no feed-in; the cap and the fallback follow the contact
    assert balance["export_limit_w"] == 0.0
    after_w3 = [s for s in closed if s[0] >= 21]
    assert min(s[1] for s in after_w3) >= -1_000
    assert held["failsafe.fallback"] == 0.0

    # the gateway gone: it set the fallback as it stopped, which the lease keeps: 0 %
    assert cap_gone == 0.0
    assert max(s[2] for s in gone) == 0.0
    assert min(s[1] for s in gone) >= -1_000
