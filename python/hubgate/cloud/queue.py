"""The store on Trio: group-committed enqueues and in-order replay to the CSMS.

Every SQLite call runs on a worker thread (`trio.to_thread.run_sync`) behind a
capacity limiter of one, so the one connection is used by one thread at a time
and the Trio loop never waits on an fsync. Enqueues that arrive while a commit
is running are written together in the next commit (group commit): hundreds of
chargers share one fsync instead of queueing for one each. Replay spends one
hop per acknowledgement; the acknowledgement that ends a fetched batch (or a
StartTransaction, whose answer the next messages may need) and the next fetch
share one.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import trio

from hubgate.cloud.errors import CsmsCallError
from hubgate.cloud.store import Outgoing, QueuedMessage, Receipt, Store

T = TypeVar("T")

Send = Callable[[QueuedMessage], Awaitable[dict[str, Any]]]
"""Sends one Call to the CSMS and returns its CallResult payload (or raises)."""


@dataclass(slots=True)
class _Waiting:
    item: Outgoing
    receipt: Receipt | None = field(default=None)


class DurableQueue:
    """A `Store` used from Trio; create it with `open_durable_queue`."""

    def __init__(self, store: Store, *, max_attempts: int = 3) -> None:
        self._store = store
        self._max_attempts = max_attempts
        self._limiter = trio.CapacityLimiter(1)
        self._commit_lock = trio.Lock()
        self._waiting: list[_Waiting] = []

    async def run(self, operation: Callable[[Store], T]) -> T:
        """Run one store operation on the store's thread, e.g. `q.run(lambda s: s.pending_count())`."""
        return await trio.to_thread.run_sync(operation, self._store, limiter=self._limiter)

    async def enqueue(self, item: Outgoing) -> Receipt:
        """Store one message durably; when this returns, the charger may be answered.

        A caller cancelled while waiting may still have had its message stored
        by another caller's commit (at least once, never lost).
        """
        waiting = _Waiting(item)
        self._waiting.append(waiting)
        try:
            async with self._commit_lock:
                if waiting.receipt is None:
                    batch, self._waiting = self._waiting, []
                    with trio.CancelScope(shield=True):
                        receipts = await self.run(
                            functools.partial(Store.enqueue_many, items=[w.item for w in batch])
                        )
                    for done, receipt in zip(batch, receipts, strict=True):
                        done.receipt = receipt
        finally:
            if waiting.receipt is None and waiting in self._waiting:
                self._waiting.remove(waiting)
        assert waiting.receipt is not None
        return waiting.receipt

    async def replay(self, charge_point: str, send: Send, *, batch: int = 256) -> int:
        """Send a charge point's queue to the CSMS in order, each message once; returns the count.

        Each message is removed only after `send` returned the CSMS's answer.
        A CallError (`CsmsCallError`) counts an attempt: after `max_attempts`
        the message goes to dead letters and replay goes on, before that the
        error propagates so the caller retries later. Any other exception
        (connection lost) propagates with the message still queued.
        """
        delivered = 0
        fetch = functools.partial(Store.pending, charge_point=charge_point, limit=batch)
        messages = await self.run(fetch)
        while messages:
            for position, message in enumerate(messages, 1):
                last = position == len(messages)
                try:
                    answer = await send(message)
                except CsmsCallError as error:
                    dead = await self.run(
                        functools.partial(
                            Store.record_failure,
                            seq=message.seq,
                            error=str(error),
                            max_attempts=self._max_attempts,
                        )
                    )
                    if not dead:
                        raise
                    if last:
                        messages = await self.run(fetch)
                    continue
                delivered += 1
                acknowledge = functools.partial(Store.acknowledge, seq=message.seq, answer=answer)
                if last or message.action == "StartTransaction":
                    # the next messages may need the new transaction id: fetch them
                    # after the acknowledgement, in the same worker-thread hop
                    messages = await self.run(functools.partial(_then, acknowledge, fetch))
                    break
                await self.run(acknowledge)
        return delivered


def _then(first: Callable[[Store], object], second: Callable[[Store], T], store: Store) -> T:
    """`first(store)`, then `second(store)`'s result: two store operations in one thread hop."""
    first(store)
    return second(store)


@asynccontextmanager
async def open_durable_queue(
    path: str | Path, *, max_attempts: int = 3, cache_size: int = 10_000
) -> AsyncIterator[DurableQueue]:
    """Open (or create) the store file and yield a `DurableQueue`; closes it on exit."""
    store = await trio.to_thread.run_sync(functools.partial(Store, path, cache_size=cache_size))
    try:
        yield DurableQueue(store, max_attempts=max_attempts)
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(store.close)
