"""End to end: the gateway on loopback controls the simulated site in protocol mode.

Real peers: the simulator's pymodbus devices (chargers with watchdogs, meters,
the grid operator's box) and its OCPP stations (the `ocpp` package) dialling
the gateway. Simulated time advances one second per control cycle: four times as
fast as the gateway's clock, on which it writes its OCPP leases.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import trio

from hubgate.control.limits import LimitSource
from hubgate.profiles.model import Quantity
from hubgate.runtime.demo import Demo, open_demo, simulated_site
from hubgate.runtime.gateway import open_gateway
from hubgate.sim.scenario_loader import load_scenario
from tests.support.e2e import board_current, one_cycle, run_for, until_connected
from tests.support.wait import wait_until

SCENARIO = Path(__file__).parent / "e2e-scenario.toml"
KILL_SCENARIO = Path(__file__).parent / "e2e-kill.toml"
FAILSAFE_A = 6.0
MODBUS_WATCHDOG_S = 60.0
"""The simulated alfen-eve's communication timeout is fixed at 60 s."""
LEASE_S = 10
"""e2e-site.toml's lease: the OCPP limit profiles' validTo."""
OCPP_CHARGERS = ("cp-1", "cp-3", "cp-5")


async def station_offers(demo: Demo) -> dict[str, float]:
    """What each OCPP station offers its EV (its charging profiles' limit) now."""

    def offers() -> dict[str, float]:
        return {s.charger.id: s.connectors[0].offered_a for s in demo.sim_site.site.stations}

    return await trio.to_thread.run_sync(demo.sim_site.call, offers)


async def setpoints(demo: Demo) -> dict[str, float]:
    """The limit the gateway last had accepted by each OCPP charger."""
    chargers = demo.gateway.loop.devices.chargers
    applied = {
        c: (await chargers[c, 1].read()).values.get(Quantity.APPLIED_CURRENT_LIMIT)
        for c in OCPP_CHARGERS
    }
    return {c: -1.0 if a is None else a for c, a in applied.items()}  # -1: nothing sent yet


Row = tuple[str, float, float, float]
"""(charger, lowest setpoint around a second, what its station offered then, highest)."""


async def follow(demo: Demo, seconds: int) -> list[Row]:
    """`run_for` that notes, each simulated second and for each OCPP charger, what its
    station offered and the gateway's setpoints from a second before to two after (a
    profile reaches the station before the gateway has the answer that records it)."""
    snapshots = [await setpoints(demo)]
    offers = []
    for _ in range(seconds):
        await demo.advance(1.0)
        offers.append(await station_offers(demo))
        await one_cycle(demo)
        snapshots.append(await setpoints(demo))
    rows: list[Row] = []
    for k, offered in enumerate(offers):
        window = snapshots[max(0, k - 1) : k + 3]
        for c in OCPP_CHARGERS:
            around = [snapshot[c] for snapshot in window]
            rows.append((c, min(around), offered[c], max(around)))
    return rows


def off_setpoint(rows: list[Row]) -> list[Row]:
    """The rows whose offer is not the gateway's setpoint (to 0.1 A, rounded down)."""
    return [r for r in rows if not r[1] - 0.15 <= r[2] <= r[3] + 0.05]


async def until_commanded(demo: Demo) -> None:
    """Run until the gateway has had a limit accepted by every OCPP charger."""
    for _ in range(40):
        if min((await setpoints(demo)).values()) >= 0:
            return
        await run_for(demo, 1)
    raise AssertionError("the gateway sent no limit to some OCPP charger within 40 s")


async def until_settled(demo: Demo) -> None:
    """Run until every OCPP charger has its allocation accepted, above the failsafe: one that
    starts at 0 A climbs in steps `min_increase_interval_s` (5 s) of the gateway's clock apart,
    20 s simulated each, and the allocator may take two steps to reach its share."""
    loop = demo.gateway.loop
    for _ in range(80):
        applied = await setpoints(demo)
        records = loop.decisions.recent(1)
        allocated = {
            d.connector.partition("#")[0]: d.setpoint_a for r in records for d in r.connectors
        }
        if all(
            applied[c] > FAILSAFE_A and abs(applied[c] - allocated[c]) <= 0.5 for c in OCPP_CHARGERS
        ):
            return
        await run_for(demo, 1)
    raise AssertionError("the OCPP chargers' allocations were not all accepted within 80 s")


@pytest.mark.timeout(110)  # after its deadline, so that Trio ends it cleanly
async def test_grid_operator_step_meter_loss_and_charger_loss_exceed_no_limit() -> None:
    loaded = load_scenario(SCENARIO)
    with trio.fail_after(80):
        async with open_demo(loaded) as demo:
            await until_connected(demo, 3)
            await run_for(demo, 5)
            await until_commanded(demo)
            rows = await follow(demo, 85)
            summary = await demo.summary()
            loop = demo.gateway.loop
            operator = [
                e.limit.power_kw
                for e in loop.limits.audit()
                if e.source is LimitSource.GRID_OPERATOR
            ]
            notes = [n for r in loop.decisions.recent(400) for n in r.notes]
            charging = await demo.simulation(lambda sim: sum(board_current(sim)))
    assert summary.violations == ()
    assert off_setpoint(rows) == []  # the OCPP stations follow the gateway all along
    assert sum(1 for r in rows if abs(r[2] - FAILSAFE_A) > 0.5) > len(rows) / 2  # not the failsafe
    assert operator[0] == 69.0
    assert 20.7 in operator  # the step to 30 % came through the box and is audited
    assert any("grid meter lost" in n for n in notes)
    assert any(re.fullmatch(r"cp-2#1 unreachable: [\d.]+ A reserved", n) for n in notes)
    assert isinstance(charging, float)
    assert charging > 3 * 10  # still charging under the 30 % limit


@pytest.mark.timeout(110)  # after its deadline, so that Trio ends it cleanly
async def test_gateway_killed_chargers_fall_back_to_failsafe_within_lease() -> None:
    """Layer 3: OCPP profiles' validTo and the Modbus chargers' own watchdogs (fixed at 60 s)."""
    loaded = load_scenario(KILL_SCENARIO)
    with trio.fail_after(80), simulated_site(loaded) as (sim_site, site):
        async with trio.open_nursery() as nursery:

            async def gateway_life(*, task_status: trio.TaskStatus[Demo]) -> None:
                async with open_gateway(site) as gateway:
                    task_status.started(Demo(sim_site, gateway))
                    await trio.sleep_forever()

            demo = await nursery.start(gateway_life)
            await until_connected(demo, 3)
            await until_settled(demo)
            rows = await follow(demo, 15)
            before = await demo.simulation(board_current)
            nursery.cancel_scope.cancel()  # the gateway dies: no shutdown, no last command
        stations = sim_site.site.stations
        await wait_until(  # the stations see their connections close (simulation held)
            lambda: demo.simulation(lambda _: not any(s.clock.linked for s in stations)),
            "the stations to see the gateway go",
        )
        held = []  # per simulated second after the kill: the stations' offers
        for _ in range(LEASE_S + 1):
            await demo.advance(1.0)
            held.append(await station_offers(demo))
        await demo.advance(MODBUS_WATCHDOG_S + 10.0 - (LEASE_S + 1))
        after = await demo.simulation(board_current)
    assert off_setpoint(rows) == []
    assert all(r[2] > FAILSAFE_A for r in rows)  # really controlled: not at the failsafe
    assert any(offer > FAILSAFE_A for offer in held[0].values())  # the lease still holds
    assert set(held[-1].values()) == {FAILSAFE_A}  # and lapsed within its length
    assert isinstance(before, tuple)
    assert isinstance(after, tuple)
    assert max(before) > 6 * FAILSAFE_A
    assert max(after) <= 6 * FAILSAFE_A + 0.5
