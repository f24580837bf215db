"""The replicated store-and-forward queue across two failovers, all real processes: three
nats-server, two `hubgate run` with a `[csms]`, the test CSMS (tests/support/csms.py),
and four OCPP 1.6 charge points (the `ocpp` package) that send 1,000 transaction
messages while the CSMS is down, dialling the gateways in priority order and repeating an
unanswered Call on the next connection, as chargers do. The leader is killed (SIGKILL)
after about 300 messages; the next one hands over (SIGTERM) after 700, where the chargers
wait for it. Then the CSMS comes back and must see every message once, in order, with its
own transaction ids.
A fifth charge point has an idTag authorized by the CSMS on the first leader before the
outage: the next leader answers it from the replicated authorization cache.
"""

from __future__ import annotations

import contextlib
import gc
import signal
import socket
import threading
import time
import urllib.error
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call as call16

from tests.support.charge_points import ChargePointThread, Cp16
from tests.support.csms import CsmsThread, proxy_csms
from tests.support.ha_harness import Gateway, cluster_table
from tests.support.nats_cluster import LOOPBACK, NatsCluster
from tests.support.ports import HeldPorts
from tests.support.wait import wait_until_blocking

pytestmark = [
    pytest.mark.peers("nats-server"),
    pytest.mark.timeout(240),
    # a charge point whose gateway died has its connection's close coroutine dropped with
    # its event loop (websockets in tests/support/charge_points.py): not hubgate's
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

IDENTITIES = [f"Q{n}" for n in range(4)]
AUTHORIZER = "QA"
"""Sends Authorize only: online on the first leader, offline on the next."""
TRANSACTIONS = 25
"""Per charger: 25 x (Start, 8 MeterValues, Stop) = 250 messages, 1,000 in all."""
HOLD_AT = 175
"""Per charger: the message each waits at until the second failover (700 in all)."""


def site(csms_port: int, ocpp_port: int, queue: Path) -> str:
    chargers = "".join(
        f'[[chargers]]\nid = "q-{n}"\nnode = "grid"\n'
        f'ocpp = {{ identity = "{identity}", versions = ["1.6"] }}\n'
        "connectors = [{ id = 1, max_current_a = 32 }]\n\n"
        for n, identity in enumerate([*IDENTITIES, AUTHORIZER])
    )
    return (
        '[site]\nname = "queue"\n\n[grid]\nphase_current_limit_a = 200\n\n'
        f"{chargers}"
        "[control]\ncycle_s = 0.5\nlease_s = 4\n\n"
        f"[ocpp]\nport = {ocpp_port}\n\n[api]\nport = 0\n\n"
        f'[csms]\nurl = "ws://{LOOPBACK}:{csms_port}/ocpp"\nqueue_path = "{queue}"\n'
    )


class Charger:
    """One charge point's outage script, sent over whichever gateway answers."""

    def __init__(self, identity: str, urls: list[str]) -> None:
        self.identity = identity
        self.urls = [f"{u}/{identity}" for u in urls]
        self.sent: list[str] = []
        self.peer: ChargePointThread | None = None
        self.reconnects = 0
        self.errors: list[str] = []

    def _connect(self, deadline: float) -> ChargePointThread:
        while time.monotonic() < deadline:
            for url in self.urls:
                peer = ChargePointThread(Cp16, url, subprotocols=["ocpp1.6"])
                try:
                    return peer.start()
                except Exception as exc:  # refused, closed, or not a gateway yet
                    self.errors.append(f"{url}: {type(exc).__name__}: {exc}")
                    continue
            time.sleep(0.2)
        raise TimeoutError(f"{self.identity}: no gateway answered")

    def call(self, payload: Any, unique_id: str) -> Any:
        """Send until a gateway answers (the same message id on every attempt)."""
        deadline = time.monotonic() + 60
        while True:
            if self.peer is None or not self.peer.alive:
                self.peer = self._connect(deadline)
                self.reconnects += 1
            try:
                return self.peer.call(payload, timeout=10, unique_id=unique_id)
            except Exception:
                if time.monotonic() > deadline:
                    raise
                self.hang_up()

    def hang_up(self) -> None:
        """Drop the connection (it may be gone already)."""
        peer, self.peer = self.peer, None
        if peer is not None:
            with contextlib.suppress(Exception):
                peer.stop()

    def run(self, counter: list[int], lock: threading.Lock, gate: threading.Event) -> None:
        """The script: Start, 8 MeterValues, Stop per transaction, a simulated minute apart;
        it waits for `gate` before its message `HOLD_AT`."""
        base = datetime(2026, 11, 1, tzinfo=UTC)
        minute = 0

        def stamp() -> str:
            nonlocal minute
            minute += 1
            return (base + timedelta(minutes=minute)).isoformat().replace("+00:00", "Z")

        def send(payload: Any) -> Any:
            if len(self.sent) == HOLD_AT:
                gate.wait(120)
            message_id = f"{self.identity}-{len(self.sent)}"
            answer = self.call(payload, message_id)
            self.sent.append(message_id)
            with lock:
                counter[0] += 1
            return answer

        for n in range(TRANSACTIONS):
            start = send(
                call16.StartTransaction(
                    connector_id=1, id_tag="TAG-OK", meter_start=n * 100, timestamp=stamp()
                )
            )
            for k in range(8):
                sample = {"value": str(n * 100 + k), "measurand": "Energy.Active.Import.Register"}
                send(
                    call16.MeterValues(
                        connector_id=1,
                        transaction_id=start.transaction_id,
                        meter_value=[{"timestamp": stamp(), "sampled_value": [sample]}],
                    )
                )
            send(
                call16.StopTransaction(
                    transaction_id=start.transaction_id, meter_stop=n * 100 + 9, timestamp=stamp()
                )
            )


class Outage:
    """The test CSMS, down until `end`; its port held meanwhile (bound, not listening: a
    gateway's dial is refused), so that no other process on the machine takes it."""

    def __init__(self) -> None:
        self.peer = proxy_csms().start()
        self.port = self.peer.port
        self._held: socket.socket | None = None
        self.begin()

    def begin(self) -> None:
        """The CSMS goes away."""
        self.peer.stop()
        self._held = socket.socket()
        self._held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the CSMS's
        self._held.bind((LOOPBACK, self.port))

    def end(self) -> None:
        """The CSMS is back on its port."""
        if self._held is not None:
            self._held.close()
            self._held = None
        self.peer.start()

    def close(self) -> None:
        """Stop it and free the port."""
        self.peer.stop()
        if self._held is not None:
            self._held.close()


@pytest.fixture
def csms() -> Iterator[Outage]:
    """The test CSMS, started once for its port, down until the test ends the outage."""
    outage = Outage()
    try:
        yield outage
    finally:
        outage.close()


def test_the_csms_sees_every_queued_message_once_across_two_failovers(
    tmp_path: Path, nats: NatsCluster, csms: Outage
) -> None:
    held = [HeldPorts(1), HeldPorts(1)]  # each gateway's OCPP port, held until it starts
    urls = [f"ws://{LOOPBACK}:{h.ports[0]}/ocpp" for h in held]
    gateways = {}
    for index, name in enumerate(("a", "b")):
        text = site(csms.port, held[index].ports[0], tmp_path / f"queue-{name}.sqlite3")
        path = tmp_path / f"gateway-{name}.toml"
        path.write_text(text + cluster_table(name, nats.urls[index], urls), encoding="utf-8")
        gateways[name] = Gateway(name, path, tmp_path / f"gateway-{name}.log", held=held[index])
    a, b = gateways["a"], gateways["b"]
    chargers = [Charger(identity, urls) for identity in IDENTITIES]
    authorizer = Charger(AUTHORIZER, urls)
    counter, lock, gate = [0], threading.Lock(), threading.Event()
    threads = [
        threading.Thread(target=c.run, args=(counter, lock, gate), daemon=True) for c in chargers
    ]
    try:
        a.start()
        a.wait_leading()
        b.start()
        b.wait_in_cluster()
        csms.end()
        wait_until_blocking(
            lambda: authorize(authorizer, "TAG-OK") == "Accepted", "the CSMS's Authorize", 30
        )  # Invalid while a's link to the CSMS is not up yet (TAG-OK unknown offline)
        csms.begin()
        authorizer.hang_up()
        for thread in threads:
            thread.start()
        wait_until_blocking(lambda: counter[0] >= 300, "300 messages stored", 60)
        a.signal(signal.SIGKILL)  # failover 1: the leader dies mid-stream
        a.wait()
        # b takes over once a's lease and device leases have run out. a restarted at once
        # would race b for the lease and could win it (safe, but then no failover to b is
        # tested), so a comes back only once b leads
        b.wait_leading(timeout_s=60)
        a.start()  # back as the standby
        a.wait_in_cluster()  # so that b's hand-over goes to a
        # the CSMS away, b answers from the cache a filled; a tag the CSMS never saw: Invalid
        assert authorize(authorizer, "TAG-OK") == "Accepted"
        assert authorize(authorizer, "TAG-NEW") == "Invalid"
        authorizer.hang_up()
        wait_until_blocking(
            lambda: counter[0] >= 4 * HOLD_AT,
            f"{4 * HOLD_AT} messages stored ({chargers[0].errors[-3:]})",
            90,
        )  # the chargers wait there: the rest goes to a after the hand-over, so that a has
        # them connected when the CSMS is back (a queue replays while its charger is there)
        gate.set()
        b.signal(signal.SIGTERM)  # failover 2: a hand-over mid-stream
        assert b.wait() == 0
        b.start()
        for thread in threads:
            thread.join(90)
        assert counter[0] == 4 * 10 * TRANSACTIONS
        csms.end()  # the CSMS is back: the leader replays every queue
        expected = {c.identity: c.sent for c in chargers}

        def delivered() -> bool:
            return all(
                {f[1] for f in transaction_calls(csms.peer, i)} >= set(ids)
                for i, ids in expected.items()
            )

        wait_until_blocking(delivered, "the CSMS to get every message", 90)
        assert a.api("GET", "csms/holds") == []  # decided on the leader (a again)...
        with pytest.raises(urllib.error.HTTPError) as refused:
            b.api("GET", "csms/holds")
        assert refused.value.code == 409  # ...not on the standby
    finally:
        for charger in [*chargers, authorizer]:
            charger.hang_up()
        for gateway in gateways.values():
            gateway.stop()
        csms.close()
        gc.collect()  # the dropped close coroutines go now, under this test's filter
    assert len(a.epochs()) + len(b.epochs()) >= 3  # a, then b, then a again
    assert all(c.reconnects >= 3 for c in chargers)
    for identity, ids in expected.items():
        frames = transaction_calls(csms.peer, identity)
        collapsed = [f for i, f in enumerate(frames) if i == 0 or frames[i - 1][1] != f[1]]
        assert [f[1] for f in collapsed] == ids  # in order, none lost, no other repeat
        assert len(frames) - len(collapsed) <= 2  # the in-flight repeat, once per failover
        current = None
        for frame in collapsed:  # transaction ids are the CSMS's
            if frame[2] == "StartTransaction":
                current = csms.peer.transaction_id(identity, frame[1])
            else:
                assert frame[3]["transactionId"] == current, frame


def authorize(charger: Charger, id_tag: str) -> str:
    """Authorize `id_tag` on whichever gateway answers; the status."""
    answer = charger.call(call16.Authorize(id_tag=id_tag), f"auth-{id_tag}-{time.monotonic()}")
    status: str = answer.id_tag_info["status"]
    return status


def transaction_calls(csms: CsmsThread, identity: str) -> list[list[Any]]:
    """The transaction messages the CSMS got from `identity`, in order."""
    actions = {"StartTransaction", "MeterValues", "StopTransaction"}
    return [f for f in csms.calls(identity) if f[2] in actions]
