"""The store on Trio: group-committed enqueues and in-order replay to the CSMS.

Every SQLite call runs on a worker thread (`trio.to_thread.run_sync`) behind a
capacity limiter of one, so the one connection is used by one thread at a time
and the Trio loop never waits on an fsync. Enqueues that arrive while a commit
is running are written together in the next commit (group commit): hundreds of
chargers share one fsync instead of queueing for one each. Replay spends one
hop per acknowledgement; the acknowledgement that ends a fetched batch (a batch
ends before a message that needs a queued StartTransaction's answer) and the
next fetch share one.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import trio

from hubgate.cloud.errors import CsmsCallError
from hubgate.cloud.store import Outgoing, QueuedMessage, Receipt, Store
from hubgate.cloud.store_changes import StoreChange

T = TypeVar("T")
log = logging.getLogger(__name__)

REMEMBER_WAIT_S = 1.0
"""How long a change that may be lost waits for the replicated stream (`remember`)."""

Send = Callable[[QueuedMessage], Awaitable[dict[str, Any]]]
"""Sends one Call to the CSMS and returns its CallResult payload (or raises)."""

OnHold = Callable[[QueuedMessage, str, "dict[str, Any] | CsmsCallError"], None]
"""Told when the CSMS's answer to a message held its transaction: why, and the answer."""


StoreRun = Callable[[Callable[[Store], Any]], Any]
"""`DurableQueue.run`: one operation on the store's thread."""


class Replica(Protocol):
    """A replicated stream the queue writes through (`hubgate.cluster.queue_replica`)."""

    async def follow(
        self, store_run: StoreRun, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Apply the stream to the local store, for ever; started once the stream exists."""

    async def caught_up(self) -> None:
        """Return once the local copy has every entry the stream held when called."""

    async def enqueue(self, store_run: StoreRun, items: Sequence[Outgoing]) -> list[Receipt]:
        """Put `items` on the stream, wait until the local copy has them; their receipts."""

    async def settle(
        self, message: QueuedMessage, outcome: dict[str, Any] | Exception, hold: str | None
    ) -> None:
        """The CSMS answered a replayed message (perhaps holding its transaction)."""

    async def change(self, store_run: StoreRun, change: StoreChange) -> object:
        """Put `change` on the stream, wait until the local copy has made it; its result."""


@dataclass(slots=True)
class _Waiting:
    item: Outgoing
    receipt: Receipt | None = field(default=None)
    error: Exception | None = field(default=None)
    """Why the commit that held it failed (it was not stored, or not known to be)."""


class DurableQueue:
    """A `Store` used from Trio; create it with `open_durable_queue`.

    With a `replica` (`hubgate.cluster.queue_replica`), enqueues and the CSMS's answers
    go through the replicated stream, which brings this store up to date."""

    def __init__(self, store: Store, *, replica: Replica | None = None) -> None:
        self._store = store
        self.replica = replica
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
                        await trio.lowlevel.checkpoint_if_cancelled()  # (below)
                        raise
                    for done, receipt in zip(batch, receipts, strict=True):
                        done.receipt = receipt
        finally:
            if waiting.receipt is None and waiting in self._waiting:
                self._waiting.remove(waiting)
        if waiting.error is not None:
            # the gateway stopping cut the replica off (its follower ends first): the caller,
            # cancelled by the same stop, answers nothing (the charger sends it again)
            await trio.lowlevel.checkpoint_if_cancelled()
            raise waiting.error
        assert waiting.receipt is not None
        return waiting.receipt

    async def change(self, change: StoreChange) -> object:
        """Make `change` (`hubgate.cloud.store_changes`) on the store, through the
        replicated stream when there is one; its result. Raises what refused it (KeyError,
        ValueError)."""
        if self.replica is not None:
            result = await self.replica.change(self.run, change)
        else:
            result = await self.run(change.apply)
        if isinstance(result, Exception):
            raise result
        return result

    async def remember(self, change: StoreChange) -> None:
        """Make a change that may be lost (the authorization cache's entries): through the
        replicated stream when there is one and it takes the change within
        `REMEMBER_WAIT_S`, else on this store alone (the cluster away: the change is this
        gateway's only; one the stream took late is made twice, to the same effect)."""
        if self.replica is not None:
            with trio.move_on_after(REMEMBER_WAIT_S):
                try:
                    await self.replica.change(self.run, change)
                    return
                except Exception as exc:  # the link's or nats-py's: the cluster is away
                    log.info("store change %s kept here only: %s", change.op, exc)
        await self.run(change.apply)

    async def replay(
        self, charge_point: str, send: Send, *, batch: int = 256, on_hold: OnHold | None = None
    ) -> int:
        """Send a charge point's queue to the CSMS in order, each message once; returns how
        many the CSMS answered with a CallResult.

        Each message is removed only after `send` returned the CSMS's answer. A
        CallError (`CsmsCallError`) moves the message to dead letters and replay
        goes on. When the CSMS refused a transaction (`hold_reason`), its other
        messages are held and `on_hold` is told. Any other exception (connection
        lost) propagates with the message still queued.
        """
        delivered = 0
        fetch = functools.partial(Store.pending, charge_point=charge_point, limit=batch)
        messages = await self.run(fetch)
        while messages:
            for position, message in enumerate(messages, 1):
                try:
                    outcome: dict[str, Any] | CsmsCallError = await send(message)
                except CsmsCallError as error:
                    outcome = error
                reason = hold_reason(message, outcome)
                if isinstance(outcome, CsmsCallError):
                    done = functools.partial(
                        Store.refuse, seq=message.seq, error=str(outcome), hold=reason
                    )
                else:
                    delivered += 1
                    done = functools.partial(
                        Store.acknowledge, seq=message.seq, answer=outcome, hold=reason
                    )
                if reason is not None and on_hold is not None:
                    on_hold(message, reason, outcome)
                if self.replica is not None:  # through the stream, which applies `done`
                    await self.replica.settle(message, outcome, reason)
                    if position == len(messages) or reason is not None:
                        messages = await self.run(fetch)
                        break
                    continue
                if position == len(messages) or reason is not None:
                    # fetch the next messages (without a held transaction's) after the
                    # acknowledgement, in the same worker-thread hop
                    messages = await self.run(functools.partial(_then, done, fetch))
                    break
                await self.run(done)
        return delivered


def hold_reason(message: QueuedMessage, outcome: dict[str, Any] | CsmsCallError) -> str | None:
    """Why the CSMS's answer holds the rest of the message's transaction, or None.

    A CallError to a transaction's start (1.6 StartTransaction, 2.0.1 TransactionEvent
    Started), or an answer refusing the id token of a transaction that goes on.
    """
    action, event = message.action, message.payload.get("eventType")
    if isinstance(outcome, CsmsCallError):
        if action == "StartTransaction" or event == "Started":
            return f"the CSMS refused {action}: {outcome}"
        return None
    if action != "StartTransaction" and (action != "TransactionEvent" or event == "Ended"):
        return None
    info = outcome.get("idTagInfo", outcome.get("idTokenInfo"))
    status = info.get("status") if isinstance(info, dict) else None
    if status is None or status == "Accepted":
        return None
    return f"the CSMS answered {action} with {status}"


def _then(first: Callable[[Store], object], second: Callable[[Store], T], store: Store) -> T:
    """`first(store)`, then `second(store)`'s result: two store operations in one thread hop."""
    first(store)
    return second(store)


@asynccontextmanager
async def open_durable_queue(
    path: str | Path, *, cache_size: int = 10_000, replica: Replica | None = None
) -> AsyncIterator[DurableQueue]:
    """Open (or create) the store file and yield a `DurableQueue`; closes it on exit."""
    store = await trio.to_thread.run_sync(functools.partial(Store, path, cache_size=cache_size))
    try:
        yield DurableQueue(store, replica=replica)
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(store.close)
