"""End to end, layer 4: the gateway as Local Controller towards a test CSMS that goes away.

The simulator's stations dial the gateway, which proxies them to the test CSMS
(tests/support/csms.py, the `ocpp` package). At 20 s of simulated time the CSMS
stops (its port closed), at 22 s the EV of a 1.6 and of a 2.0.1 station leaves and a
new one plugs in two seconds later, at 40 s the grid operator steps to 30 %, at 65 s
the CSMS starts again on the same port. Simulated time advances one second per
control cycle (`run_for`), and the gateway cycles once a second here (`CYCLE_S`): with
the site's 0.25 s cycle the simulated seconds ran four times faster than the gateway's OCPP
exchanges, and on a loaded machine a step's profiles reached the stations 3-4 simulated
seconds late (a grid violation beyond the EVs' reaction time that a real site, where both
clocks are one, would not see).
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
import trio
from ocpp.charge_point import remove_nones, snake_to_camel_case

from hubgate.backoff import Backoff
from hubgate.cloud.proxy import ProxySettings
from hubgate.cloud.store import Store
from hubgate.config.services import Csms
from hubgate.control.limits import LimitSource
from hubgate.runtime.demo import Demo, simulated_site
from hubgate.runtime.gateway import Gateway, open_gateway
from hubgate.sim.engine import Simulation
from hubgate.sim.ocpp_station import Station
from hubgate.sim.scenario_loader import load_scenario
from tests.support.csms import CsmsThread
from tests.support.e2e import board_current, run_for, until_connected
from tests.support.wait import wait_until

SCENARIO = Path(__file__).parent / "e2e-csms.toml"
STATIONS = ("E2E-1", "E2E-3", "E2E-5")
REPLUGGED = ("E2E-3", "E2E-5")
"""A 1.6 and a 2.0.1 station whose EV leaves during the outage and a new one comes."""
METER_VALUES_S = 2.0
CYCLE_S = 1.0
"""The gateway's cycle: one simulated second of `run_for` is one second of its clock."""
FAST = ProxySettings(
    backoff=Backoff(initial_s=0.05, maximum_s=0.5),
    connect_timeout_s=2.0,
    first_connect_wait_s=2.0,
    replay_retry_s=0.2,
)


def _station(demo: Demo, identity: str) -> Station:
    return next(s for s in demo.sim_site.site.stations if s.identity == identity)


def _slot(demo: Demo, identity: str) -> int:
    return _station(demo, identity).connectors[0].slot


def _transaction_calls(csms: CsmsThread, identity: str) -> list[list[Any]]:
    """The transaction messages (stored while offline) the CSMS received from `identity`."""
    return [f for f in csms.calls(identity) if _key(f[2], f[3]) is not None]


def _key(action: str, payload: dict[str, Any]) -> tuple[object, ...] | None:
    """What tells a transaction message from another (camelCase payload); None: not one."""
    if action == "TransactionEvent":
        return (payload["transactionInfo"]["transactionId"], payload["seqNo"])
    if action in ("StartTransaction", "StopTransaction"):
        return (action, payload["timestamp"])
    if action == "MeterValues" and "transactionId" in payload:
        return (action, payload["meterValue"][0]["timestamp"])
    return None


def _record_sent(demo: Demo) -> dict[str, list[tuple[object, ...]]]:
    """Log the transaction messages each station sends (to hubgate), in order."""
    sent: dict[str, list[tuple[object, ...]]] = {}
    for station in demo.sim_site.site.stations:
        log = sent.setdefault(station.identity, [])
        send = station._call  # observed, not replaced

        async def logged(payload: Any, send: Any = send, log: Any = log) -> Any:
            key = _key(type(payload).__name__, snake_to_camel_case(remove_nones(asdict(payload))))
            if key is not None:
                log.append(key)
            return await send(payload)

        station._call = logged  # type: ignore[method-assign]
    return sent


def _repeats(calls: list[list[Any]]) -> list[str]:
    """Message ids received more than once; each must directly follow its original."""
    counts = Counter(f[1] for f in calls)
    repeated = [message_id for message_id, n in counts.items() if n > 1]
    for message_id in repeated:
        at = [i for i, f in enumerate(calls) if f[1] == message_id]
        assert len(at) == 2, f"{message_id} received {len(at)} times"
        assert at[1] == at[0] + 1, f"{message_id} repeated apart: {at}"
        assert calls[at[0]][3] == calls[at[1]][3]
    return repeated


def _arrived(csms: CsmsThread, sent: dict[str, list[tuple[object, ...]]]) -> bool:
    """Whether the CSMS has as many transaction messages of each station as it sent."""
    return all(len(_unique(_transaction_calls(csms, i))) >= len(sent[i]) for i in STATIONS)


def _unique(calls: list[list[Any]]) -> list[tuple[object, ...] | None]:
    """The calls' keys, a repeated message id once."""
    seen: set[str] = set()
    return [_key(f[2], f[3]) for f in calls if not (f[1] in seen or seen.add(f[1]))]


async def _replug(demo: Demo) -> None:
    """The EVs of `REPLUGGED` leave now and new ones plug in two seconds later."""
    slots = [_slot(demo, identity) for identity in REPLUGGED]

    def leave(sim: Simulation) -> None:
        for slot in slots:
            ev = sim.evs[slot]
            assert ev is not None
            ev.departs_at = sim.now

    def arrive(sim: Simulation) -> None:
        for slot in slots:
            sim.plug_in(slot, sim.now)

    await demo.simulation(leave)
    await run_for(demo, 2)
    await demo.simulation(arrive)


@pytest.mark.timeout(210)  # after the deadline below, so that Trio ends the test cleanly
async def test_csms_outage_local_control_goes_on_and_transactions_are_replayed(
    tmp_path: Path,
) -> None:
    loaded = load_scenario(SCENARIO)
    csms = CsmsThread()  # authorizes every token: the proxy's cache learns SIMEV from it
    await trio.to_thread.run_sync(csms.start)
    try:
        with (
            trio.fail_after(180),
            simulated_site(loaded, meter_values_s=METER_VALUES_S) as (sim_site, site),
        ):
            proxied = site.model_copy(
                update={
                    "csms": Csms(url=f"{csms.url}/ocpp", queue_path=str(tmp_path / "q.sqlite3")),
                    "control": site.control.model_copy(update={"cycle_s": CYCLE_S}),
                }
            )
            async with open_gateway(proxied, csms_settings=FAST) as gateway:
                demo = Demo(sim_site, gateway)
                sent = _record_sent(demo)
                proxy = gateway.csms
                assert proxy is not None
                await until_connected(demo, len(STATIONS))
                await run_for(demo, 20)  # t = 20 s: every transaction started online
                for identity in STATIONS:
                    await wait_until(
                        lambda i=identity: proxy.chargers[i].upstream.online, f"{identity} up"
                    )
                assert csms.calls("E2E-3", "Authorize")
                await trio.to_thread.run_sync(csms.stop)
                sent_online = {i: len(log) for i, log in sent.items()}
                online_frames = len(csms.frames)

                await run_for(demo, 2)  # t = 22 s
                await _replug(demo)  # t = 24 s: new EVs, authorized offline
                seen: list[tuple[list[float], dict[str, float]]] = []  # new EVs, every second
                await _run_watching(demo, 14, seen)  # t = 38 s: local control, full grid limit
                before = _setpoints(gateway)
                decided_before = _decided(gateway)
                # t = 55 s: the grid operator stepped to 30 % at 40 s
                await _run_watching(demo, 17, seen)
                during = _setpoints(gateway)
                board = await demo.simulation(board_current)
                since_step = gateway.loop.decisions.recent(15)  # a cycle per simulated second
                reasons = {str(c.reason) for r in since_step for c in r.connectors}
                await _run_watching(demo, 10, seen)  # t = 65 s
                decided = [decided_before, _decided(gateway)]  # for a failure's message
                assert not any(c.upstream.online for c in proxy.chargers.values())
                assert len(csms.frames) == online_frames  # nothing reached the CSMS meanwhile
                backlog = await proxy.queue.run(functools.partial(Store.pending_count))

                sent_offline = {i: len(log) - sent_online[i] for i, log in sent.items()}
                await trio.to_thread.run_sync(csms.start)  # the same port
                await run_for(demo, 10)  # t = 75 s
                await wait_until(
                    lambda: not any(c.backlog for c in proxy.chargers.values()), "replay"
                )
                await wait_until(lambda: _arrived(csms, sent), "the last messages", timeout_s=5)
                pending = await demo.simulation(
                    lambda sim: sum(s.pending for s in sim_site.site.stations)
                )
                left = await proxy.queue.run(functools.partial(Store.pending_count))
                summary = await demo.summary()
                operator = [
                    e.limit.power_kw
                    for e in gateway.loop.limits.audit()
                    if e.source is LimitSource.GRID_OPERATOR
                ]
                refused = [_station(demo, i).connectors[0].stopped for i in REPLUGGED]
    finally:
        await trio.to_thread.run_sync(csms.stop)

    # (1) no limit exceeded beyond the chargers' reaction time, the step followed
    assert summary.violations == ()
    assert 20.7 in operator
    # (2) charging went on under local control, and followed the grid operator's step
    # the step leaves 20.7 kW / (3 x 230 V) = 30 A a phase, 10 A of it the steady base load:
    # the three-phase EVs share at most 20 A (settled there, or still ramping below it)
    assert sum(during.values()) <= 20.0 + 1e-6 < sum(before.values())
    assert "GRID_OPERATOR" in reasons
    assert isinstance(board, tuple)
    assert max(board) >= 6  # still charging under the 30 % limit
    # (4) the new EVs were authorized locally (from the cache) and charge
    assert refused == [False, False]
    # Under the 30 % step only some EVs fit at 6 A, and who pauses rotates (min_off); the
    # OCPP leases pace increases on the gateway's clock, which the simulated seconds outrun
    # by a factor that depends on the machine's load: a new EV counts as charging when it
    # drew, and was offered current, in some second of 24-65 s.
    new_draws = [max(draws) for draws in zip(*(draws for draws, _ in seen), strict=True)]
    offers = {i: max(offered[i] for _, offered in seen) for i in REPLUGGED}
    assert all(d > 0 for d in new_draws), (seen, decided)
    assert all(offers[i] > 0 for i in REPLUGGED), (seen, decided)  # hubgate's profiles, offline
    assert len(csms.calls("E2E-3", "Authorize")) == 1  # the offline one was answered locally
    assert len(csms.calls("E2E-5", "Authorize")) == 1
    # (3) every transaction message sent during the outage reached the CSMS, in order, once
    assert backlog > 0
    assert pending == 0
    assert left == 0
    assert sent_offline["E2E-3"] > 10  # meter values every 2 s, a stop and a start
    assert sent_offline["E2E-5"] >= 2  # Ended, Started
    for identity in STATIONS:
        calls = _transaction_calls(csms, identity)
        assert len(_repeats(calls)) <= 1  # the call in flight when the CSMS went
        assert _unique(calls) == sent[identity]
    ids = {f[3].get("transactionId") for f in _transaction_calls(csms, "E2E-3")} - {None}
    assert len(ids) == 2  # the CSMS's ids, never hubgate's local (negative) one
    assert min(ids) >= 1000
    actions = [k[0] for k in sent["E2E-3"] if k[0] != "MeterValues"]
    assert actions == ["StartTransaction", "StopTransaction", "StartTransaction"]
    assert len({k[0] for k in sent["E2E-5"]}) == 2  # two transactions


async def _run_watching(
    demo: Demo, seconds: int, seen: list[tuple[list[float], dict[str, float]]]
) -> None:
    """`run_for` one second at a time, noting what the new EVs draw and are offered."""
    for _ in range(seconds):
        await run_for(demo, 1)
        seen.append((await _draws(demo), await _offers(demo)))


def _decided(gateway: Gateway) -> list[tuple[str, float, str]]:
    """The last cycle's decision for each connector: setpoint and reason."""
    return [
        (c.connector, c.setpoint_a, str(c.reason))
        for r in gateway.loop.decisions.recent(1)
        for c in r.connectors
    ]


async def _draws(demo: Demo) -> list[float]:
    """What the EVs at the `REPLUGGED` stations draw now."""
    slots = [_slot(demo, identity) for identity in REPLUGGED]

    def draws(sim: Simulation) -> list[float]:
        return [ev.draw_a if ev is not None else 0.0 for ev in (sim.evs[s] for s in slots)]

    found = await demo.simulation(draws)
    assert isinstance(found, list)
    return found


def _setpoints(gateway: Gateway) -> dict[str, float]:
    """The latest decision's setpoint per connector."""
    return {c.connector: c.setpoint_a for c in gateway.loop.decisions.recent(1)[-1].connectors}


async def _offers(demo: Demo) -> dict[str, float]:
    """What each OCPP station offers its EV now (hubgate's profiles), by identity."""
    stations = demo.sim_site.site.stations
    offers = await demo.simulation(
        lambda _: {s.identity: s.connectors[0].offered_a for s in stations}
    )
    assert isinstance(offers, dict)
    return offers
