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
from typing import TYPE_CHECKING, Any, TypeVar

import trio

from hubgate._core import HubgateError
from hubgate.cloud.store import Outgoing, QueuedMessage, Receipt, Store

if TYPE_CHECKING:
    from hubgate.cluster.queue_replica import QueueReplica

T = TypeVar("T")

Send = Callable[[QueuedMessage], Awaitable[dict[str, Any]]]
"""Sends one Call to the CSMS and returns its CallResult payload (or raises)."""


class CsmsCallError(HubgateError):
    """The CSMS answered a replayed Call with a CallError."""

    def __init__(self, error_code: str, description: str = "") -> None:
        super().__init__(f"{error_code}: {description}" if description else error_code)
        self.error_code = error_code


@dataclass(slots=True)
class _Waiting:
    item: Outgoing
    receipt: Receipt | None = field(default=None)
    error: Exception | None = field(default=None)
    """Why the commit that held it failed (it was not stored, or not known to be)."""


class DurableQueue:
    """A `Store` used from Trio; create it with `open_durable_queue`.

    With a `replica` (`hubgate.cluster.queue_replica`), enqueues, acknowledgements and
    refusals go through the replicated stream, which brings this store up to date."""

    def __init__(
        self, store: Store, *, max_attempts: int = 3, replica: QueueReplica | None = None
    ) -> None:
        self._store = store
        self.replica = replica
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
                if waiting.receipt is None and waiting.error is None:
                    batch, self._waiting = self._waiting, []
                    items = [w.item for w in batch]
                    try:
                        with trio.CancelScope(shield=True):
                            if self.replica is not None:
                                receipts = await self.replica.enqueue(self.run, items)
                            else:
                                receipts = await self.run(
                                    functools.partial(Store.enqueue_many, items=items)
                                )
                    except Exception as exc:  # the others of the batch fail with it
                        for done in batch:
                            done.error = exc
                        raise
                    for done, receipt in zip(batch, receipts, strict=True):
                        done.receipt = receipt
        finally:
            if waiting.receipt is None and waiting in self._waiting:
                self._waiting.remove(waiting)
        if waiting.error is not None:
            raise waiting.error
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
                    dead = await self._record_failure(message, str(error))
                    if not dead:
                        raise
                    if last:
                        messages = await self.run(fetch)
                    continue
                delivered += 1
                if self.replica is not None:
                    await self.replica.acknowledge(message.charge_point, message.message_id, answer)
                    if last or message.action == "StartTransaction":
                        messages = await self.run(fetch)
                        break
                    continue
                acknowledge = functools.partial(Store.acknowledge, seq=message.seq, answer=answer)
                if last or message.action == "StartTransaction":
                    # the next messages may need the new transaction id: fetch them
                    # after the acknowledgement, in the same worker-thread hop
                    messages = await self.run(functools.partial(_then, acknowledge, fetch))
                    break
                await self.run(acknowledge)
        return delivered

    async def _record_failure(self, message: QueuedMessage, error: str) -> bool:
        """A refusal counted; True once the message went to dead letters."""
        if self.replica is None:
            return await self.run(
                functools.partial(
                    Store.record_failure,
                    seq=message.seq,
                    error=error,
                    max_attempts=self._max_attempts,
                )
            )
        await self.replica.fail(message.charge_point, message.message_id, error, self._max_attempts)
        receipt = await self.run(
            functools.partial(
                Store.receipt, charge_point=message.charge_point, message_id=message.message_id
            )
        )
        return receipt is None


def _then(first: Callable[[Store], object], second: Callable[[Store], T], store: Store) -> T:
    """`first(store)`, then `second(store)`'s result: two store operations in one thread hop."""
    first(store)
    return second(store)


@asynccontextmanager
async def open_durable_queue(
    path: str | Path,
    *,
    max_attempts: int = 3,
    cache_size: int = 10_000,
    replica: QueueReplica | None = None,
) -> AsyncIterator[DurableQueue]:
    """Open (or create) the store file and yield a `DurableQueue`; closes it on exit."""
    store = await trio.to_thread.run_sync(functools.partial(Store, path, cache_size=cache_size))
    try:
        yield DurableQueue(store, max_attempts=max_attempts, replica=replica)
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(store.close)
