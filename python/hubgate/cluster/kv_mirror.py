"""One JetStream KV bucket that every gateway of a site writes and follows, from Trio.

    mirror = KvMirror(link, cluster, "hubgate_limits", "limit", apply)
    await nursery.start(mirror.run)   # started once the entries already there are applied
    mirror.put(key, value)            # this gateway's change (None: delete the key)

`await apply(key, value)` is called in a Trio task with every entry under `<site_id>.>`,
in order: first those already in the bucket, then each change, this gateway's own ones
included (a value can name its writer, `mirror.writer`, to tell them apart), each revision
of a key once. Names that may hold any character go into a key as `key_part(name)`.
Writes go out in order, each tried a few times; a change that cannot be written is
logged, not kept.

The entries come from an ordered push consumer with a heartbeat every `HEARTBEAT_S`
(nats-py's `KeyValue.watch` takes its 5 s default): such a consumer lives on one NATS
node, and when that node is lost the gateway hears nothing until two heartbeats are
missed and the consumer is made again (with the default, 10 to 20 s behind: a standby
that took over in that time went without the operator's latest inputs).
"""

from __future__ import annotations

import base64
import logging
import math
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio
from nats.aio.client import Client
from nats.js.api import DeliverPolicy
from nats.js.kv import KV_DEL, KV_OP, KV_PURGE, KeyValue

from hubgate.cluster.buckets import open_bucket
from hubgate.cluster.link import NatsLink
from hubgate.config.services import Cluster

log = logging.getLogger(__name__)

Apply = Callable[[str, bytes | None], Awaitable[None]]

Found = tuple[str, bytes | None, int]
"""An entry to apply: key, value (None: deleted), revision."""

_READY: Found = ("", None, 0)
"""In the entries to apply: the ones already in the bucket are before it."""

HEARTBEAT_S = 0.5
"""The watch's idle heartbeat: its consumer is made again after two are missed."""


def key_part(text: str) -> str:
    """`text` as one part of a key (base64url without padding: KV keys take no '#')."""
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def key_text(part: str) -> str:
    """The text of a `key_part`; ValueError when `part` is not one."""
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode()


@dataclass(frozen=True)
class Change:
    """A key set (`value`) or deleted (None) by this gateway."""

    key: str
    value: bytes | None


class KvMirror:
    """A bucket's entries of this site, followed and written (module docstring)."""

    def __init__(
        self, link: NatsLink, cluster: Cluster, bucket: str, what: str, apply: Apply
    ) -> None:
        self.link = link
        self.cluster = cluster
        self.bucket = bucket
        self.what = what
        """What the entries are, for the log."""
        self.apply = apply
        self.writer = f"{cluster.node}/{uuid.uuid4().hex[:12]}"
        """This run of this gateway, for the values it writes to name."""
        self._kv: KeyValue | None = None
        self._send, self._changes = trio.open_memory_channel[Change](1000)
        self._found, self._to_apply = trio.open_memory_channel[Found](math.inf)
        self._applied: dict[str, int] = {}
        """Per key, the revision applied last (following again after a lost connection
        delivers every entry again)."""
        self._token = trio.lowlevel.current_trio_token()

    def put(self, key: str, value: bytes | None) -> None:
        """Write `key` (delete it: None) after the changes before it."""
        try:
            self._send.send_nowait(Change(key, value))
        except trio.WouldBlock:
            log.warning("cluster: %s %s not replicated (too many changes at once)", self.what, key)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Follow the bucket and write this gateway's changes into it, for ever; started
        once the entries already in the bucket are applied."""
        self._kv = await open_bucket(self.link, self.bucket, self.cluster.replicas, self.what)
        ready = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._follow)
            nursery.start_soon(self._apply_all, ready)
            await ready.wait()
            task_status.started()
            async for change in self._changes:
                await self._write(change)

    async def _apply_all(self, ready: trio.Event) -> None:
        async for key, value, revision in self._to_apply:
            if (key, value, revision) == _READY:
                ready.set()
            elif revision > self._applied.get(key, 0):
                self._applied[key] = revision
                await self.apply(key, value)

    async def _write(self, change: Change) -> None:
        for attempt in range(5):
            try:
                await self.link.run(lambda nc: self._put(change), within_s=2.0)
                return
            except Exception as exc:  # the cluster away, or nats-py's errors in a failover
                problem: Exception = exc
            await trio.sleep(0.2 * (attempt + 1))
        log.warning("cluster: %s %s not replicated: %s", self.what, change.key, problem)

    async def _follow(self) -> None:
        while True:
            try:
                await self.link.run(self._watch, within_s=None)
            except Exception as exc:  # the cluster away, or nats-py's errors: follow again
                log.debug("cluster: %s bucket not followed: %s", self.what, exc)
            await trio.sleep(0.5)

    # -- on the asyncio side ----------------------------------------------------------------

    async def _put(self, change: Change) -> None:
        assert self._kv is not None
        if change.value is None:
            await self._kv.delete(change.key)
        else:
            await self._kv.put(change.key, change.value)

    async def _watch(self, nc: Client) -> None:
        """Every entry of this site, the latest of each key first, then each change (a
        `KeyValue.watch` with a heartbeat of `HEARTBEAT_S`)."""
        prefix = f"$KV.{self.bucket}."
        subscription = await nc.jetstream(timeout=2.0).subscribe(
            f"{prefix}{self.cluster.site_id}.>",
            stream=f"KV_{self.bucket}",
            ordered_consumer=True,
            idle_heartbeat=HEARTBEAT_S,
            deliver_policy=DeliverPolicy.LAST_PER_SUBJECT,
            inactive_threshold=300.0,
        )
        found = self._found.send_nowait
        try:
            info = await subscription.consumer_info()
            sent = 0 if info.delivered is None else info.delivered.consumer_seq
            ready = info.num_pending == 0 and sent == 0
            if ready:  # an empty bucket: nothing will come before the changes
                self._token.run_sync_soon(found, _READY)
            async for message in subscription.messages:
                meta = message.metadata
                operation = (message.headers or {}).get(KV_OP)
                value = None if operation in (KV_DEL, KV_PURGE) else message.data
                key = message.subject[len(prefix) :]
                self._token.run_sync_soon(found, (key, value, meta.sequence.stream))
                if not ready and meta.num_pending == 0:
                    ready = True
                    self._token.run_sync_soon(found, _READY)
        finally:
            await subscription.unsubscribe()
