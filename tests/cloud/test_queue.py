"""The store on Trio: group commit and in-order, exactly-once replay."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import trio

from hubgate.cloud.errors import CsmsCallError
from hubgate.cloud.queue import DurableQueue, open_durable_queue
from hubgate.cloud.store import Outgoing, QueuedMessage, Receipt, Store
from tests.support.queue_worker import transaction_script

CHARGE_POINTS = ("CP1", "CP2", "CP3", "CP4")


def fill(store: Store, per_charge_point: int) -> None:
    """Queue the script for every charge point, one commit each."""
    for cp in CHARGE_POINTS:
        receipts = store.enqueue_many(transaction_script(cp, per_charge_point))
        issued = [r.local_transaction_id for r in receipts if r.local_transaction_id is not None]
        assert issued == [-(k + 1) for k in range(len(issued))]


class FakeCsms:
    """Records what reaches it and numbers transactions like a CSMS would."""

    def __init__(self) -> None:
        self.received: dict[str, list[QueuedMessage]] = {cp: [] for cp in CHARGE_POINTS}
        self.next_transaction_id = 100
        self.issued: dict[str, list[int]] = {cp: [] for cp in CHARGE_POINTS}

    async def send(self, message: QueuedMessage) -> dict[str, Any]:
        await trio.lowlevel.checkpoint()
        self.received[message.charge_point].append(message)
        if message.action == "StartTransaction":
            self.next_transaction_id += 1
            self.issued[message.charge_point].append(self.next_transaction_id)
            return {"transactionId": self.next_transaction_id, "idTagInfo": {"status": "Accepted"}}
        return {}


def check_transactions(messages: Sequence[QueuedMessage], issued: Sequence[int]) -> None:
    """Every message of a transaction carries the id the CSMS gave its StartTransaction."""
    ids = iter(issued)
    current = None
    for message in messages:
        if message.action == "StartTransaction":
            current = next(ids)
        else:
            assert message.payload["transactionId"] == current, message
    assert next(ids, None) is None


@pytest.mark.timeout(120)  # after the deadline below, so that Trio ends the test cleanly
async def test_ten_thousand_messages_replay_in_order_once(tmp_path: Path) -> None:
    with trio.fail_after(90):
        async with open_durable_queue(tmp_path / "q.sqlite3") as queue:
            await queue.run(lambda s: fill(s, 2500))
            csms = FakeCsms()
            async with trio.open_nursery() as nursery:
                for cp in CHARGE_POINTS:
                    nursery.start_soon(queue.replay, cp, csms.send)
            for cp in CHARGE_POINTS:
                received = csms.received[cp]
                assert [m.payload["n"] for m in received] == list(range(2500))
                check_transactions(received, csms.issued[cp])
            assert await queue.run(lambda s: s.pending_count()) == 0


async def test_connection_loss_keeps_the_message_and_replay_resumes(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with open_durable_queue(tmp_path / "q.sqlite3") as queue:
            await queue.run(lambda s: fill(s, 30))
            csms = FakeCsms()

            async def flaky(message: QueuedMessage) -> dict[str, Any]:
                if message.payload["n"] == 17:
                    raise OSError("CSMS went away")
                return await csms.send(message)

            with pytest.raises(OSError, match="went away"):
                await queue.replay("CP1", flaky)
            assert await queue.replay("CP1", csms.send) == 13
            assert [m.payload["n"] for m in csms.received["CP1"]] == list(range(30))
            check_transactions(csms.received["CP1"], csms.issued["CP1"])


async def test_a_call_error_dead_letters_the_message_and_replay_goes_on(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with open_durable_queue(tmp_path / "q.sqlite3") as queue:
            for n in range(3):
                await queue.enqueue(Outgoing("CP1", f"m{n}", "StopTransaction", {"n": n}))
            seen: list[int] = []

            async def rejects_first(message: QueuedMessage) -> dict[str, Any]:
                seen.append(message.payload["n"])
                if message.payload["n"] == 0:
                    raise CsmsCallError("OccurrenceConstraintViolation", "bad meter value")
                return {}

            assert await queue.replay("CP1", rejects_first) == 2
            assert seen == [0, 1, 2]
            dead = await queue.run(Store.dead_letters)
            assert [(d[2], d[3]) for d in dead] == [
                ("StopTransaction", "OccurrenceConstraintViolation: bad meter value")
            ]


class CountingStore(Store):
    """A real store that counts its commits of enqueues."""

    commits = 0

    def enqueue_many(self, items: Sequence[Outgoing], now: float | None = None) -> list[Receipt]:
        CountingStore.commits += 1
        return super().enqueue_many(items, now)


async def test_concurrent_enqueues_share_commits(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "q.sqlite3")
    queue = DurableQueue(store)
    receipts: list[Receipt] = []

    async def one(n: int) -> None:
        receipts.append(await queue.enqueue(Outgoing(f"CP{n % 7}", f"m{n}", "MeterValues", {})))

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            for n in range(300):
                nursery.start_soon(one, n)
    assert len({r.seq for r in receipts}) == 300
    assert store.pending_count() == 300
    assert CountingStore.commits <= 5
    store.close()


async def test_cancelled_enqueue_loses_nothing_acknowledged(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with open_durable_queue(tmp_path / "q.sqlite3") as queue:
            acknowledged: list[str] = []

            async def producer(cp: str) -> None:
                for n in range(10_000):
                    await queue.enqueue(Outgoing(cp, f"m{n}", "MeterValues", {}))
                    acknowledged.append(f"{cp}/m{n}")

            with trio.move_on_after(0.3):
                async with trio.open_nursery() as nursery:
                    for cp in CHARGE_POINTS:
                        nursery.start_soon(producer, cp)
            stored = set()
            for cp in CHARGE_POINTS:
                messages = await queue.run(lambda s, cp=cp: s.pending(cp, limit=100_000))
                stored |= {f"{cp}/{m.message_id}" for m in messages}
            assert acknowledged
            assert set(acknowledged) <= stored
