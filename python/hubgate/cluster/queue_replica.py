"""The store-and-forward queue replicated in a JetStream stream (with `[cluster]`).

The stream `HUBGATE_QUEUE_<site_id>` (subjects `hubgate.<site_id>.queue.>`, replicas from
`[cluster]`) is the queue's log, and each gateway's SQLite store (`hubgate.cloud.store`)
is a copy of it, brought up to date by `QueueReplica.follow` on the leader and the
standby alike:

- a charger's message to queue is published as an `enqueue` entry with `Nats-Msg-Id`
  `<charge point>/<OCPP message id>/<hash of action and payload>` (the stream drops a
  repeat within its duplicate window; a new message under a reused id is not a repeat),
  and the charger is answered only once the stream has it on a quorum of nodes *and* the
  local copy applied it;
- the CSMS's answer to a replayed message is an `ack` entry, a CallError a `refuse` entry
  (each with the transaction hold it causes), keyed by the message's upstream id;
- the store's other changes (`hubgate.cloud.store_changes`: the CSMS's local
  authorization list, its answers to Authorize (the cache) and ClearCache, an operator's
  release or discard of a held transaction) are `change` entries, answered with their
  result on the gateway that made them once its copy has applied them;
- the follower applies entries in stream order, each batch in one SQLite commit with the
  stream position it reached (`Store.replicated`), so a restart resumes where it stopped;
- a gateway that becomes leader first catches up to the stream's end (`caught_up`), then
  replays the queue to the CSMS: per-charger order and exactly once are kept across a
  change of leader, except the documented in-flight repeat (a message the CSMS answered
  just before the old leader died is sent once more, with the same message id).

The transaction-id lookups of messages answered online stay local to each gateway's file,
and so do the cache's last-use times (docs/ha.md).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import trio
from nats.aio.client import Client
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError

from hubgate._core import HubgateError
from hubgate.cloud.queue import StoreRun
from hubgate.cloud.store import Outgoing, QueuedMessage, Receipt, Store, payload_hash
from hubgate.cloud.store_changes import StoreChange
from hubgate.cluster.link import ClusterUnavailableError, NatsLink
from hubgate.config.services import Cluster

log = logging.getLogger(__name__)

Entry = dict[str, Any]
CALL_S = 5.0
"""The most one NATS call may take before it counts as the cluster being away."""


class QueueReplica:
    """The queue's stream and this gateway's follower of it."""

    def __init__(self, link: NatsLink, cluster: Cluster) -> None:
        self.link = link
        self.stream = f"HUBGATE_QUEUE_{cluster.site_id}"
        self.subject = f"hubgate.{cluster.site_id}.queue"
        self.replicas = cluster.replicas
        self.position = 0
        """The last stream entry applied to the local store."""
        self._advanced = trio.Event()
        self._stopped = False
        """Whether `follow` ended (the gateway stops): nothing waits for the copy then."""
        self._kick = trio.Event()
        self._published = 0
        """The last entry this gateway put on the stream (the follower reads up to it
        without asking where the stream ends)."""
        self._id = uuid.uuid4().hex
        """This replica, in the `change` entries it puts on the stream."""
        self._results: dict[int, object] = {}
        """This replica's `change` entries applied here, by position: their results."""

    # -- writing ----------------------------------------------------------------------

    async def enqueue(self, store_run: StoreRun, items: Sequence[Outgoing]) -> list[Receipt]:
        """Put `items` on the stream, wait until the local copy has them; their receipts."""
        now = time.time()
        entries = [
            (
                {"op": "enqueue", "item": _outgoing(item), "at": now},
                f"{item.charge_point}/{item.message_id}/{payload_hash(item.action, item.payload)}",
            )
            for item in items
        ]
        await self._append(entries)
        found: list[Receipt] = await store_run(functools.partial(_receipts, items=items))
        return found

    async def settle(
        self, message: QueuedMessage, outcome: dict[str, Any] | Exception, hold: str | None
    ) -> None:
        """The CSMS answered a replayed message (a CallResult, or a CallError that moves it
        to dead letters), perhaps holding its transaction: on the stream, then in the copy."""
        entry: Entry = {"cp": message.charge_point, "upstream": message.upstream_id, "hold": hold}
        if isinstance(outcome, Exception):
            entry |= {"op": "refuse", "error": str(outcome)}
        else:
            entry |= {"op": "ack", "answer": outcome}
        await self._append([(entry, None)])

    async def change(self, store_run: StoreRun, change: StoreChange) -> object:
        """Put `change` on the stream, wait until the local copy has made it; its result
        (what `StoreChange.apply` returned here)."""
        entry: Entry = {"op": "change", "change": change.op, "fields": change.fields}
        position = await self._append([(entry | {"by": self._id}, None)])
        return self._results.pop(position, None)

    async def _append(self, entries: Sequence[tuple[Entry, str | None]]) -> int:
        last = await self.link.run(lambda nc: self._publish(nc, entries), within_s=CALL_S)
        self._published = max(self._published, last)
        self._kick.set()
        await self.reached(last)
        return last

    async def reached(self, position: int, within_s: float = CALL_S) -> None:
        """Return once the local copy has applied the stream up to `position`; raises
        `ClusterUnavailableError` when it has not within `within_s`, or at once when the
        follower stops (the gateway stops: its caller is cancelled too)."""
        with trio.move_on_after(within_s):
            while self.position < position:
                if self._stopped:
                    raise ClusterUnavailableError(
                        f"the local queue copy stopped before entry {position}"
                    )
                await self._advanced.wait()
            return
        raise ClusterUnavailableError(f"the local queue copy did not reach entry {position}")

    async def caught_up(self) -> None:
        """Return once the local copy has every entry the stream held when called."""
        info = await self.link.run(
            lambda nc: nc.jetstream(timeout=CALL_S).stream_info(self.stream), within_s=CALL_S
        )
        self._kick.set()
        await self.reached(int(info.state.last_seq), within_s=math.inf)

    # -- following --------------------------------------------------------------------

    async def follow(
        self, store_run: StoreRun, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Apply the stream to the local store, for ever; started once the stream exists."""
        while True:
            try:
                await self.link.run(self._create_stream, within_s=CALL_S)
                break
            except (ClusterUnavailableError, HubgateError, OSError) as exc:
                log.warning("cluster: queue stream not reachable yet: %s", exc)
            except Exception as exc:  # nats-py's errors (no JetStream yet, no quorum)
                log.warning("cluster: queue stream not ready yet: %s", exc)
            await trio.sleep(0.5)
        self.position = await store_run(lambda s: s.replica_position(self.stream))
        self._stopped = False
        task_status.started()
        try:
            await self._apply_for_ever(store_run)
        finally:
            self._stopped = True
            self._advanced.set()
            self._advanced = trio.Event()

    async def _apply_for_ever(self, store_run: StoreRun) -> None:
        while True:
            try:
                batch = await self.link.run(self._fetch, within_s=CALL_S)
            except (ClusterUnavailableError, OSError) as exc:
                log.debug("cluster: queue stream not read: %s", exc)
                batch = []
            except Exception as exc:  # nats-py's errors: a failover inside the cluster
                log.debug("cluster: queue stream not read: %s", exc)
                batch = []
            if batch:
                ops = [(seq, _operation(entry)) for seq, entry in batch]
                results = await store_run(
                    functools.partial(Store.replicated, stream=self.stream, entries=ops)
                )
                for (seq, entry), result in zip(batch, results, strict=True):
                    if entry.get("by") == self._id:
                        self._results[seq] = result
                self.position = batch[-1][0]
                self._advanced.set()
                self._advanced = trio.Event()
                continue
            with trio.move_on_after(0.1):
                await self._kick.wait()
            self._kick = trio.Event()

    # -- on the asyncio side ----------------------------------------------------------

    async def _create_stream(self, nc: Client) -> None:
        js = nc.jetstream(timeout=CALL_S)
        try:
            await js.stream_info(self.stream)
        except NotFoundError:
            config = StreamConfig(
                name=self.stream, subjects=[f"{self.subject}.>"], num_replicas=self.replicas
            )
            await js.add_stream(config)

    async def _publish(self, nc: Client, entries: Sequence[tuple[Entry, str | None]]) -> int:
        js = nc.jetstream(timeout=CALL_S)
        acks = []
        for entry, message_id in entries:
            headers = None if message_id is None else {"Nats-Msg-Id": message_id}
            data = json.dumps(entry, separators=(",", ":")).encode()
            acks.append(
                await js.publish_async(
                    f"{self.subject}.{entry['op']}", data, headers=headers, stream=self.stream
                )
            )
        return max([int((await ack).seq) for ack in acks])

    async def _fetch(self, nc: Client, limit: int = 256) -> list[tuple[int, Entry]]:
        js = nc.jetstream(timeout=CALL_S)
        batch: list[tuple[int, Entry]] = []
        seq = self.position + 1
        while len(batch) < limit and not (batch and seq > self._published):
            try:
                message = await js.get_msg(self.stream, seq)
            except NotFoundError:
                if batch:
                    break
                first = int((await js.stream_info(self.stream)).state.first_seq)
                if seq >= first:
                    break  # not there yet (or not yet where this server looks): later
                log.error(
                    "cluster: the queue stream no longer holds entries %d-%d (retention): "
                    "this gateway's queue file missed them",
                    seq,
                    first - 1,
                )
                seq = first
                continue
            batch.append((seq, json.loads(message.data or b"{}")))
            seq += 1
        return batch


def _receipts(store: Store, items: Sequence[Outgoing]) -> list[Receipt]:
    """The items' receipts; -1 for one already delivered (a repeat after its delivery)."""
    return [store.receipt(item) or Receipt(-1, None) for item in items]


def _outgoing(item: Outgoing) -> dict[str, Any]:
    return {
        "charge_point": item.charge_point,
        "message_id": item.message_id,
        "action": item.action,
        "payload": item.payload,
        "coalesce_key": item.coalesce_key,
        "issue_transaction_id": item.issue_transaction_id,
        "connection": item.connection,
        "upstream_id": item.upstream_id,
    }


def _operation(entry: Entry) -> Callable[[Store], object]:
    """What a stream entry does to a store."""
    op = entry.get("op")
    if op == "enqueue":
        item, at = Outgoing(**entry["item"]), float(entry["at"])
        return lambda store: store.enqueue_many([item], now=at)
    if op in ("ack", "refuse"):

        def settle(store: Store) -> None:
            seq = store.queued_seq(entry["cp"], entry["upstream"])
            if seq is None:
                return  # gone already: replaced by a newer one of its key
            if op == "ack":
                store.acknowledge(seq, entry["answer"], hold=entry["hold"])
            else:
                store.refuse(seq, entry["error"], hold=entry["hold"])

        return settle
    if op == "change":
        return StoreChange(str(entry["change"]), dict(entry["fields"])).apply
    log.warning("cluster: unknown queue entry %r skipped", op)
    return lambda store: None
