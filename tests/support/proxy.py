"""The proxy under test: the test CSMS, hubgate's listener with `CsmsProxy` attached,
and `ocpp`-package charge points connecting to it."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import trio
from ocpp.v16 import call as call16

from hubgate.backoff import Backoff
from hubgate.cloud.proxy import CsmsProxy, ProxySettings, open_csms_proxy
from hubgate.cloud.store import Hold
from hubgate.cloud.upstream import UpstreamLink
from hubgate.config.services import Csms, OcppServer
from hubgate.control.limits import LimitBook
from hubgate.ocpp.registry import Admission, StationRegistry
from hubgate.ocpp.server import OcppListener
from hubgate.ocpp.session import SessionLimits
from hubgate.ocpp.versions import OcppVersion
from hubgate.state import EventLevel
from tests.support.charge_points import ChargePointThread, now_text
from tests.support.csms import CsmsThread, proxy_csms
from tests.support.events import RecordedEvents
from tests.support.ocpp_listener import ADMISSIONS, FACTORIES
from tests.support.wait import wait_until

GATEWAY = "GW-1"

FAST = ProxySettings(
    backoff=Backoff(initial_s=0.05, maximum_s=0.2),
    upstream=SessionLimits(call_timeout_s=15.0),
    connect_timeout_s=2.0,
    first_connect_wait_s=2.0,
    replay_retry_s=0.1,
)

FLEET = [Admission(f"FLEET-{n}", f"fleet-{n}", (OcppVersion.V16,)) for n in range(10)]


def transaction16(
    cp: ChargePointThread, ids: Sequence[str], *, tag: str = "TAG-OK", meter: int = 0
) -> int:
    """A 1.6 transaction (blocking, for `trio.to_thread`): StartTransaction, MeterValues and,
    with a third id, StopTransaction, under the given message ids; its transaction id."""
    start = cp.call(
        call16.StartTransaction(
            connector_id=1, id_tag=tag, meter_start=meter, timestamp=now_text()
        ),
        5.0,
        ids[0],
    )
    tx = start.transaction_id
    sample = {"value": str(meter + 5), "measurand": "Energy.Active.Import.Register"}
    values = [{"timestamp": now_text(), "sampled_value": [sample]}]
    cp.call(call16.MeterValues(connector_id=1, transaction_id=tx, meter_value=values), 5.0, ids[1])
    if len(ids) > 2:
        stop = call16.StopTransaction(transaction_id=tx, meter_stop=meter + 9, timestamp=now_text())
        cp.call(stop, 5.0, ids[2])
    return int(tx)


@dataclass
class Proxied:
    """A running proxy between the test CSMS and charge points."""

    csms: CsmsThread
    proxy: CsmsProxy
    registry: StationRegistry
    book: LimitBook
    port: int
    events: list[tuple[EventLevel, str, str]]
    """What the proxy reported for an operator: (level, subject, message)."""

    async def connect(self, identity: str, version: OcppVersion) -> ChargePointThread:
        url = f"ws://127.0.0.1:{self.port}/ocpp/{identity}"
        peer = ChargePointThread(FACTORIES[version], url, subprotocols=[f"ocpp{version}"])
        return await trio.to_thread.run_sync(peer.start)

    async def call(self, peer: ChargePointThread, payload: Any) -> Any:
        """A charge point's call, through hubgate (to the CSMS when it is up)."""
        return await trio.to_thread.run_sync(peer.call, payload)

    async def csms_call(self, identity: str, payload: Any) -> Any:
        """A CSMS call to a charge point (or the gateway), through hubgate."""
        await trio.to_thread.run_sync(self.csms.wait_connected, identity)
        return await trio.to_thread.run_sync(self.csms.call, identity, payload)

    async def online(self, identity: str) -> None:
        """Wait until hubgate's upstream connection of `identity` is up."""
        while True:
            link = self.proxy.chargers.get(identity)
            if link is not None and link.upstream.online:
                return
            await trio.sleep(0.01)

    async def drained(self, identity: str) -> None:
        """Wait until the backlog of the connected `identity` is sent (held ones aside)."""

        def sent() -> bool:
            charger = self.proxy.chargers.get(identity)
            return charger is not None and not charger.backlog

        await wait_until(sent, f"{identity}'s backlog sent")

    async def holds(self, count: int) -> list[Hold]:
        """Wait until `count` transactions are held for an operator; the holds."""

        async def held() -> list[Hold] | None:
            holds = await self.proxy.holds()
            return holds if len(holds) >= count else None

        found = await wait_until(held, f"{count} held transactions")
        assert found is not None
        return found

    async def link(self, identity: str) -> UpstreamLink:
        """The upstream link of a connected charger, once its proxy runs."""
        while True:
            charger = self.proxy.chargers.get(identity)
            if charger is not None:
                return charger.upstream
            await trio.sleep(0.01)

    async def stop_csms(self) -> None:
        await trio.to_thread.run_sync(self.csms.stop)

    async def start_csms(self) -> None:
        await trio.to_thread.run_sync(self.csms.start)


@asynccontextmanager
async def open_proxied(
    tmp_path: Path,
    *,
    csms_up: bool = True,
    csms: CsmsThread | None = None,
    settings: ProxySettings = FAST,
    **options: Any,
) -> AsyncIterator[Proxied]:
    """The test CSMS (`proxy_csms()` unless given; started unless `csms_up` is False) and
    hubgate proxying to it with the given further `Csms` settings (credentials, offline
    authorization)."""
    csms = csms or proxy_csms()
    await trio.to_thread.run_sync(csms.start)
    if not csms_up:
        await trio.to_thread.run_sync(csms.stop)
    config = Csms(
        url=f"{csms.url}/ocpp",
        identity=GATEWAY,
        queue_path=str(tmp_path / "queue.sqlite3"),
        **options,
    )
    recorded = RecordedEvents()
    book = LimitBook()
    registry = StationRegistry([*ADMISSIONS, *FLEET])
    try:
        async with (
            open_csms_proxy(config, book, settings=settings, events=recorded) as proxy,
            trio.open_nursery() as nursery,
        ):
            listener = OcppListener(OcppServer(port=0), registry, attach=proxy.attach)
            port = await nursery.start(listener.serve)
            yield Proxied(csms, proxy, registry, book, port, recorded.emitted)
            nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):  # also after a deadline: no CSMS left listening
            await trio.to_thread.run_sync(csms.stop)


HUBGATE = str(Path(sys.executable).parent / "hubgate")
IDENTITIES = [f"K{n}" for n in range(4)]


def proxy_site(tmp_path: Path) -> Path:
    """A site of the `IDENTITIES` chargers (1.6) behind a CSMS that is not there."""
    chargers = "".join(
        f'[[chargers]]\nid = "k-{n}"\nnode = "grid"\n'
        f'ocpp = {{ identity = "{identity}", versions = ["1.6"] }}\n'
        "connectors = [{ id = 1, max_current_a = 32 }]\n\n"
        for n, identity in enumerate(IDENTITIES)
    )
    site = tmp_path / "site.toml"
    site.write_text(
        '[site]\nname = "proxy"\ntimezone = "UTC"\n\n'
        "[grid]\nvoltage_v = 230\nphase_current_limit_a = 80\n\n"
        f"{chargers}"
        f'[csms]\nurl = "ws://127.0.0.1:1/unused"\nqueue_path = "{tmp_path / "q.sqlite3"}"\n'
    )
    return site


def outage_script(cp: ChargePointThread, transactions: int, base: datetime) -> list[str]:
    """A charger's outage: Start, 8 MeterValues and Stop per transaction, a minute apart
    (compressed: days of an outage sent at full speed). Returns its message ids in order."""
    sent: list[str] = []
    minute = 0
    ids = (f"{cp.identity}-{base:%d}-{n}" for n in range(10**9))

    def stamp() -> str:
        nonlocal minute
        minute += 1
        moment = base + timedelta(minutes=minute)
        return moment.isoformat(timespec="seconds").replace("+00:00", "Z")

    def call(payload: object) -> Any:
        sent.append(next(ids))
        return cp.call(payload, unique_id=sent[-1])

    for n in range(transactions):
        start = call(
            call16.StartTransaction(
                connector_id=1, id_tag="TAG-OK", meter_start=n * 100, timestamp=stamp()
            )
        )
        tx = start.transaction_id
        for k in range(8):
            sample = {"value": str(n * 100 + k), "measurand": "Energy.Active.Import.Register"}
            call(
                call16.MeterValues(
                    connector_id=1,
                    transaction_id=tx,
                    meter_value=[{"timestamp": stamp(), "sampled_value": [sample]}],
                )
            )
        call(call16.StopTransaction(transaction_id=tx, meter_stop=n * 100 + 9, timestamp=stamp()))
    return sent


def check_replayed(env: Proxied, identity: str, expected_ids: list[str]) -> int:
    """The CSMS got a charger's messages in order, each once; transaction ids are the CSMS's.

    Returns how many were repeats: a message the CSMS answered but hubgate had not yet
    marked delivered when it died is sent once more with the same id, right away
    (store.py's in-flight window). Those repeats are adjacent to the original.
    """
    frames = env.csms.calls(identity)
    collapsed = [f for i, f in enumerate(frames) if i == 0 or frames[i - 1][1] != f[1]]
    assert [f[1] for f in collapsed] == expected_ids
    current: int | None = None
    for frame in collapsed:
        action, payload = frame[2], frame[3]
        if action == "StartTransaction":
            current = env.csms.transaction_id(identity, frame[1])
        else:
            assert payload["transactionId"] == current, frame
    return len(frames) - len(collapsed)
