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

import os
from pathlib import Path
from typing import Any

import pytest
import trio

from hubgate.cloud.queue import DurableQueue
from hubgate.cloud.store import Outgoing, QueuedMessage, Store

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
