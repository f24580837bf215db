"""Store-and-forward queue: replay rate, enqueue latency (fsync), storage per message.

Every SQLite call of `DurableQueue` runs on a worker thread; the enqueue
cases compare that with blocking the Trio loop, and group commit with one
commit per message.

Replay sends to an in-process fake CSMS that answers at once, so the figure
is the queue's own ceiling: one fetch per 256 messages and one commit (not
fsynced, see `Store.acknowledge`) per acknowledged message. Storage is the
SQLite file size (after a checkpoint) divided by the number of queued 1.6
MeterValues messages of typical size.
"""

from __future__ import annotations

import json
import math
import os
import resource
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, ClassVar

import pytest
import trio

from hubgate.backoff import Backoff
from hubgate.cloud.proxy import CsmsProxy, ProxySettings, open_csms_proxy
from hubgate.cloud.queue import DurableQueue
from hubgate.cloud.store import Outgoing, QueuedMessage, Store
from hubgate.config.services import Csms, OcppServer
from hubgate.control.limits import LimitBook
from hubgate.ocpp.registry import Admission, StationRegistry
from hubgate.ocpp.server import OcppListener
from hubgate.ocpp.versions import OcppVersion
from tests.support.charge_points import ChargePointThread, Cp16
from tests.support.csms import CsmsThread

ROOT = Path(__file__).resolve().parent.parent

REPLAYED = 2_000
METER_VALUES = {
    "connectorId": 1,
    "transactionId": 4711,
    "meterValue": [
        {
            "timestamp": "2026-11-25T21:00:00Z",
            "sampledValue": [
                {"value": "12345.6", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                {"value": "16.0", "measurand": "Current.Import", "phase": "L1", "unit": "A"},
            ],
        }
    ],
}


def meter_values(cp: str, n: int) -> Outgoing:
    return Outgoing(cp, f"{cp}-{n}", "MeterValues", METER_VALUES)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "bench.sqlite3")


@pytest.mark.benchmark(group="cloud-queue-replay")
@pytest.mark.parametrize("impl", ["hubgate"])
def test_replay_rate(benchmark: Any, store: Store, impl: str) -> None:
    queue = DurableQueue(store)

    async def csms(message: QueuedMessage) -> dict[str, Any]:
        return {}

    def setup() -> tuple[tuple[()], dict[str, Any]]:
        store.enqueue_many([meter_values("CP1", n) for n in range(REPLAYED)])
        return (), {}

    def replay() -> int:
        return trio.run(queue.replay, "CP1", csms)

    delivered = benchmark.pedantic(replay, setup=setup, rounds=5, iterations=1)
    assert delivered == REPLAYED
    if benchmark.stats is not None:
        rate = REPLAYED / benchmark.stats.stats.median
        benchmark.extra_info["messages_per_second"] = round(rate)


@pytest.mark.benchmark(group="cloud-queue-enqueue-10-sequential")
@pytest.mark.parametrize("impl", ["hubgate", "sqlite-on-the-loop"])
def test_enqueue_latency(benchmark: Any, store: Store, impl: str) -> None:
    """10 enqueues one after the other, each fsynced: the worker thread's cost over a blocking call."""
    queue = DurableQueue(store)
    counter = iter(range(10**9))

    async def blocking(item: Outgoing) -> None:
        store.enqueue_many([item])

    enqueue = queue.enqueue if impl == "hubgate" else blocking

    async def ten() -> None:
        for _ in range(10):
            await enqueue(meter_values("CP1", next(counter)))

    benchmark(trio.run, ten)
    assert store.pending_count() % 10 == 0


@pytest.mark.benchmark(group="cloud-queue-enqueue-200-chargers")
@pytest.mark.parametrize("impl", ["hubgate", "commit-per-message"])
def test_enqueue_200_concurrent_chargers(benchmark: Any, store: Store, impl: str) -> None:
    """200 chargers send at once: hubgate's group commit against one fsync per message."""
    queue = DurableQueue(store)
    counter = iter(range(10**9))
    lock = trio.Lock()

    async def commit_alone(item: Outgoing) -> None:
        async with lock:
            await trio.to_thread.run_sync(store.enqueue_many, [item])

    enqueue = queue.enqueue if impl == "hubgate" else commit_alone

    async def burst() -> None:
        async with trio.open_nursery() as nursery:
            for n in range(200):
                nursery.start_soon(enqueue, meter_values(f"CP{n}", next(counter)))

    benchmark(trio.run, burst)
    assert store.pending_count() % 200 == 0


@pytest.mark.benchmark(group="cloud-queue-storage")
@pytest.mark.parametrize("impl", ["hubgate"])
def test_storage_bytes_per_message(benchmark: Any, tmp_path: Path, impl: str) -> None:
    queued = 10_000

    def fill() -> float:
        path = tmp_path / f"storage-{os.urandom(4).hex()}.sqlite3"
        store = Store(path)
        for start in range(0, queued, 1000):
            store.enqueue_many([meter_values(f"CP{n % 50}", n) for n in range(start, start + 1000)])
        store.close()  # the last connection checkpoints the WAL into the file
        return path.stat().st_size / queued

    per_message = benchmark.pedantic(fill, rounds=1, iterations=1)
    benchmark.extra_info["bytes_per_message"] = round(per_message)
    assert 0 < per_message < 2_000


E2E_CHARGE_POINTS = ("BENCH-0", "BENCH-1", "BENCH-2", "BENCH-3")
E2E_PER_CHARGE_POINT = 500


def offline_transactions(cp: str, count: int) -> list[Outgoing]:
    """1.6 transactions stored while the CSMS was away: Start, MeterValues x8, Stop."""
    items = []
    stamp = "2026-11-25T21:00:00Z"
    for n in range(count):
        local = -(n // 10 + 1)
        if n % 10 == 0:
            start = {"connectorId": 1, "idTag": "TAG-OK", "meterStart": n, "timestamp": stamp}
            items.append(
                Outgoing(cp, f"{cp}-{n}", "StartTransaction", start, issue_transaction_id=True)
            )
        elif n % 10 == 9:
            stop = {"transactionId": local, "meterStop": n, "timestamp": stamp}
            items.append(Outgoing(cp, f"{cp}-{n}", "StopTransaction", stop))
        else:
            values = {**METER_VALUES, "transactionId": local}
            items.append(Outgoing(cp, f"{cp}-{n}", "MeterValues", values))
    return items


def stored_offline(path: Path, per_charge_point: int) -> Path:
    """A queue file holding `per_charge_point` offline transaction messages of each bench
    charge point (`offline_transactions`)."""
    store = Store(path)
    for cp in E2E_CHARGE_POINTS:
        store.enqueue_many(offline_transactions(cp, per_charge_point))
    store.close()
    return path


@asynccontextmanager
async def chargers_through_the_proxy(
    config: Csms, settings: ProxySettings | None = None
) -> AsyncIterator[CsmsProxy]:
    """The real proxy and OCPP listener, with the bench's 1.6 charge points (threads)
    connected to it; they disconnect and the listener stops on exit."""
    admissions = [Admission(cp, cp, (OcppVersion.V16,)) for cp in E2E_CHARGE_POINTS]
    async with (
        open_csms_proxy(config, LimitBook(), settings=settings) as proxy,
        trio.open_nursery() as nursery,
    ):
        listener = OcppListener(
            OcppServer(port=0), StationRegistry(admissions), attach=proxy.attach
        )
        hub = await nursery.start(listener.serve)
        peers = [
            ChargePointThread(Cp16, f"ws://127.0.0.1:{hub}/ocpp/{cp}", subprotocols=["ocpp1.6"])
            for cp in E2E_CHARGE_POINTS
        ]
        for peer in peers:
            await trio.to_thread.run_sync(peer.start)
        yield proxy
        for peer in peers:
            await trio.to_thread.run_sync(peer.stop)
        nursery.cancel_scope.cancel()


@pytest.mark.benchmark(group="cloud-replay-end-to-end")
@pytest.mark.parametrize("impl", ["hubgate"])
def test_replay_rate_through_the_proxy(benchmark: Any, tmp_path: Path, impl: str) -> None:
    """Stored messages replayed by the real proxy to the test CSMS (the `ocpp` package, in its
    own process) over WebSocket, 4 charge points at once; timed from hubgate's start (the
    chargers reconnect) until the CSMS has every message."""
    total = len(E2E_CHARGE_POINTS) * E2E_PER_CHARGE_POINT
    rounds = iter(range(100))

    def setup() -> tuple[tuple[Path, subprocess.Popen[str]], dict[str, Any]]:
        path = stored_offline(tmp_path / f"e2e-{next(rounds)}.sqlite3", E2E_PER_CHARGE_POINT)
        csms = subprocess.Popen(
            [sys.executable, "-m", "tests.support.csms", str(total)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        return (path, csms), {}

    async def replay(path: Path, csms: subprocess.Popen[str]) -> None:
        assert csms.stdout is not None
        port = int(csms.stdout.readline().split()[1])
        config = Csms(url=f"ws://127.0.0.1:{port}/ocpp", queue_path=str(path))
        async with chargers_through_the_proxy(config):
            line = await trio.to_thread.run_sync(csms.stdout.readline)
            assert line == f"received {total}\n", line

    cpu = {"hubgate": 0.0, "csms": 0.0}

    def run(path: Path, csms: subprocess.Popen[str]) -> None:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        ours = time.process_time()
        try:
            trio.run(replay, path, csms)
        finally:
            cpu["hubgate"] += time.process_time() - ours
            csms.communicate(timeout=10)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu["csms"] += sum(after[:2]) - sum(children[:2])

    benchmark.pedantic(run, setup=setup, rounds=3, iterations=1)
    if benchmark.stats is not None:
        benchmark.extra_info["messages_per_second"] = round(total / benchmark.stats.stats.median)
        # where the time goes: CPU per message of this process (hubgate and the idle
        # chargers) and of the test CSMS's process
        for who, seconds in cpu.items():
            benchmark.extra_info[f"{who}_cpu_us_per_message"] = round(seconds / 3 / total * 1e6)


class _CommitTimes(Store):
    """The store, noting when each acknowledgement is committed (`time.monotonic`)."""

    committed: ClassVar[dict[tuple[str, str], float]] = {}

    def acknowledge(self, seq: int, answer: dict[str, Any], hold: str | None = None) -> None:
        row = self._db.execute(
            "SELECT charge_point, upstream_id FROM messages WHERE seq = ?", (seq,)
        ).fetchone()
        super().acknowledge(seq, answer, hold)
        if row is not None:
            _CommitTimes.committed[(row[0], row[1])] = time.monotonic()


@pytest.mark.benchmark(group="cloud-replay-kill-window")
@pytest.mark.parametrize("impl", ["hubgate"])
def test_kill_window_of_the_replay(
    benchmark: Any, tmp_path: Path, impl: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """How long each replayed message is at risk of being sent twice: from its arrival at
    the test CSMS (its own process) to the commit of hubgate's acknowledgement. A SIGKILL
    in that window sends it again after the restart (store.py); the share of the replay's
    time that is at risk is the chance that a kill during replay repeats a message of a
    charger. Both clocks are `time.monotonic` (CLOCK_MONOTONIC, shared by processes)."""
    total = len(E2E_CHARGE_POINTS) * E2E_PER_CHARGE_POINT
    monkeypatch.setattr("hubgate.cloud.queue.Store", _CommitTimes)
    path = stored_offline(tmp_path / "window.sqlite3", E2E_PER_CHARGE_POINT)
    arrivals = tmp_path / "arrivals.jsonl"

    async def replay(csms: subprocess.Popen[str]) -> None:
        assert csms.stdout is not None
        port = int(csms.stdout.readline().split()[1])
        config = Csms(url=f"ws://127.0.0.1:{port}/ocpp", queue_path=str(path))
        async with chargers_through_the_proxy(config) as proxy:
            line = await trio.to_thread.run_sync(csms.stdout.readline)
            assert line == f"received {total}\n", line
            while True:  # the last acknowledgements may follow the CSMS's answers by a moment
                if not await proxy.queue.run(lambda s: s.pending_count()):
                    break
                await trio.sleep(0.01)

    def run() -> None:
        csms = subprocess.Popen(
            [sys.executable, "-m", "tests.support.csms", str(total), str(arrivals)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            trio.run(replay, csms)
        finally:
            csms.communicate(timeout=10)

    benchmark.pedantic(run, rounds=1, iterations=1)
    arrived = {}
    for line in arrivals.read_text().splitlines():
        identity, message_id, at = json.loads(line)
        arrived[(identity, message_id)] = at
    committed = _CommitTimes.committed
    windows = sorted(committed[key] - at for key, at in arrived.items())
    assert len(windows) == total
    assert windows[0] > 0
    spans = [
        max(at for (i, _), at in committed.items() if i == cp)
        - min(at for (i, _), at in arrived.items() if i == cp)
        for cp in E2E_CHARGE_POINTS
    ]
    benchmark.extra_info["window_p50_ms"] = round(windows[total // 2] * 1000, 3)
    benchmark.extra_info["window_p99_ms"] = round(windows[total * 99 // 100] * 1000, 3)
    benchmark.extra_info["at_risk_share"] = round(sum(windows) / sum(spans), 3)


@pytest.mark.benchmark(group="cloud-replay-start-after-csms-return")
@pytest.mark.parametrize("impl", ["hubgate", "backoff-only"])
def test_replay_start_after_the_csms_returns(benchmark: Any, tmp_path: Path, impl: str) -> None:
    """From the CSMS's return (its listener up again) until the first stored message of
    each of 4 chargers reached it. The links' backoff has grown to 5 s (a long outage's is
    60 s); `hubgate` probes the CSMS once a second (`CsmsProbe`), `backoff-only` waits
    the backoff out (its first link up still wakes the others)."""
    settings = ProxySettings(
        backoff=Backoff(initial_s=5.0, maximum_s=5.0),
        probe_interval_s=1.0 if impl == "hubgate" else math.inf,
    )
    delays: list[float] = []
    rounds = iter(range(100))

    async def outage_and_return() -> None:
        csms = await trio.to_thread.run_sync(CsmsThread().start)
        await trio.to_thread.run_sync(csms.stop)
        path = stored_offline(tmp_path / f"return-{next(rounds)}.sqlite3", 1)
        config = Csms(url=f"ws://127.0.0.1:{csms.port}/ocpp", queue_path=str(path))
        async with chargers_through_the_proxy(config, settings):
            await trio.sleep(2.5)  # the CSMS stays away; every link is in its backoff
            back = time.monotonic()
            await trio.to_thread.run_sync(csms.start)
            first = {cp: f"{cp}-0" for cp in E2E_CHARGE_POINTS}
            await trio.to_thread.run_sync(csms.wait_delivered, first, 30)
            delays.append(max(csms.arrived_at[cp, m] for cp, m in first.items()) - back)
        await trio.to_thread.run_sync(csms.stop)

    benchmark.pedantic(trio.run, (outage_and_return,), rounds=3, iterations=1)
    delays.sort()
    benchmark.extra_info["replay_start_s_median"] = round(delays[len(delays) // 2], 2)
    benchmark.extra_info["replay_start_s_max"] = round(delays[-1], 2)
