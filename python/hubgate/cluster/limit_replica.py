"""Operator and CSMS limits on both gateways: the `LimitBook` leases that come in on one
gateway only, kept in a JetStream KV bucket that both follow.

A site limit the operator sets through one gateway's API or Modbus server, and the limits
the CSMS gives the leader (its proxy is the only one connected), are `API`,
`MODBUS_SERVER` and `CSMS` leases in that gateway's book. `LimitReplica` writes each one it
sets or clears into the bucket `hubgate_limits` (replicas from `[cluster]`), key
`<site_id>.<source>.<target, base64url>`, value `{"writer", "phase_a", "power_kw", "until",
"origin"}` (`writer`: the node and this run of it; `until`: wall-clock end, null for a
permanent lease; a cleared lease is deleted), and applies what any other gateway, or an
earlier run of this one, wrote to its own book, so a new leader (or a restarted gateway)
starts with every limit in force. Only the lease in force is carried: a CSMS profile's
later periods are known to the gateway that received it alone. Each gateway expires a lease on its own clock: the two boxes'
wall clocks (NTP) must agree to well within the leases' lengths.

The fleet's leases are taken by both gateways already (`cluster.fleet`), the grid
operator's box and the schedules are read by both.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from hubgate.cluster.buckets import open_bucket
from hubgate.cluster.link import ClusterUnavailableError, NatsLink
from hubgate.config.services import Cluster
from hubgate.control.limits import AuditAction, AuditEntry, Limit, LimitBook, LimitSource

log = logging.getLogger(__name__)

BUCKET = "hubgate_limits"
REPLICATED = frozenset({LimitSource.API, LimitSource.MODBUS_SERVER, LimitSource.CSMS})


@dataclass(frozen=True)
class Change:
    """A lease set (`value`) or cleared (None) on one gateway, for the bucket."""

    key: str
    value: bytes | None


def key(site_id: str, source: LimitSource, target: str) -> str:
    """The bucket key of `source`'s lease on `target` (KV keys take no '#')."""
    encoded = base64.urlsafe_b64encode(target.encode()).decode().rstrip("=")
    return f"{site_id}.{source.value}.{encoded}"


def parse_key(site_id: str, text: str) -> tuple[LimitSource, str] | None:
    """The source and target of a bucket key of this site; None for anything else."""
    site, _, rest = text.partition(".")
    source, _, encoded = rest.partition(".")
    if site != site_id or not encoded:
        return None
    try:
        target = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        return LimitSource(source), target
    except ValueError:
        return None


def encode(writer: str, entry: AuditEntry, until: float | None) -> bytes:
    """A lease as the bucket keeps it."""
    body = {
        "writer": writer,
        "phase_a": None if entry.limit.phase_a is None else list(entry.limit.phase_a),
        "power_kw": entry.limit.power_kw,
        "until": until,
        "origin": entry.origin,
    }
    return json.dumps(body, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Remote:
    """A lease another gateway wrote."""

    writer: str
    limit: Limit
    until: float | None
    origin: str


def decode(data: bytes) -> Remote:
    """A bucket value; ValueError when it is not one."""
    try:
        body = json.loads(data)
        phases = body["phase_a"]
        limit = Limit(
            phase_a=None
            if phases is None
            else (float(phases[0]), float(phases[1]), float(phases[2])),
            power_kw=None if body["power_kw"] is None else float(body["power_kw"]),
        )
        until = body["until"]
        return Remote(
            str(body["writer"]), limit, None if until is None else float(until), str(body["origin"])
        )
    except (KeyError, TypeError, IndexError) as exc:
        raise ValueError(f"not a limit lease: {exc}") from None


class LimitReplica:
    """Keeps this gateway's `API`, `MODBUS_SERVER` and `CSMS` leases in the bucket and
    the other gateway's in this gateway's book (module docstring)."""

    def __init__(
        self,
        link: NatsLink,
        cluster: Cluster,
        book: LimitBook,
        *,
        clock: Callable[[], float] = trio.current_time,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.link = link
        self.cluster = cluster
        self.book = book
        self.clock = clock
        self.wall_clock = wall_clock
        self.writer = f"{cluster.node}/{uuid.uuid4().hex[:12]}"
        """This run of this gateway, in what it writes."""
        self._kv: KeyValue | None = None
        self._applying = False
        self._send, self._changes = trio.open_memory_channel[Change](1000)
        self._token = trio.lowlevel.current_trio_token()
        book.listeners.append(self._changed)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Follow the bucket and write this gateway's changes into it, for ever; started
        once the leases already in the bucket are in the book."""
        self._kv = await open_bucket(self.link, BUCKET, self.cluster.replicas, "limit")
        ready = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._follow, ready)
            await ready.wait()
            task_status.started()
            async for change in self._changes:
                await self._write(change)

    # -- this gateway's changes -----------------------------------------------------------

    def _changed(self, entry: AuditEntry, _previous: Limit | None) -> None:
        if self._applying or entry.source not in REPLICATED:
            return
        name = key(self.cluster.site_id, entry.source, entry.target)
        if entry.action is AuditAction.SET:
            until = None
            if entry.expires_at is not None:
                until = self.wall_clock() + (entry.expires_at - self.clock())
            change = Change(name, encode(self.writer, entry, until))
        elif entry.action is AuditAction.CLEARED:
            change = Change(name, None)
        else:  # expired: each gateway on its own clock
            return
        try:
            self._send.send_nowait(change)
        except trio.WouldBlock:
            log.warning("cluster: limit %s not replicated (too many changes at once)", name)

    async def _write(self, change: Change) -> None:
        for attempt in range(5):
            try:
                await self.link.run(lambda nc: self._put(change), within_s=2.0)
                return
            except (ClusterUnavailableError, OSError) as exc:
                problem: Exception = exc
            except Exception as exc:  # nats-py's errors: a failover inside the cluster
                problem = exc
            await trio.sleep(0.2 * (attempt + 1))
        log.warning("cluster: limit %s not replicated: %s", change.key, problem)

    # -- the other gateway's --------------------------------------------------------------

    async def _follow(self, ready: trio.Event) -> None:
        while True:
            try:
                await self.link.run(lambda nc: self._watch(ready), within_s=None)
            except (ClusterUnavailableError, OSError) as exc:
                log.debug("cluster: limit bucket not followed: %s", exc)
            except Exception as exc:  # nats-py's errors: follow again
                log.debug("cluster: limit bucket not followed: %s", exc)
            await trio.sleep(0.5)

    def _apply(self, name: str, value: bytes | None) -> None:
        """On the Trio thread: one bucket entry into the book (`value` None: deleted)."""
        found = parse_key(self.cluster.site_id, name)
        if found is None:
            return
        source, target = found
        now = self.clock()
        self._applying = True
        try:
            if value is None:
                self.book.clear(target, source, now=now, origin="other gateway")
                return
            try:
                remote = decode(value)
            except ValueError as exc:
                log.warning("cluster: limit %s unreadable: %s", name, exc)
                return
            if remote.writer == self.writer:
                return  # its own change coming back: in the book already
            lease_s = None if remote.until is None else remote.until - self.wall_clock()
            if lease_s is not None and lease_s <= 0:
                return  # ran out already
            self.book.set(
                target, source, remote.limit, now=now, lease_s=lease_s, origin=remote.origin
            )
        finally:
            self._applying = False

    # -- on the asyncio side ----------------------------------------------------------------

    async def _put(self, change: Change) -> None:
        assert self._kv is not None
        if change.value is None:
            await self._kv.delete(change.key)
        else:
            await self._kv.put(change.key, change.value)

    async def _watch(self, ready: trio.Event) -> None:
        assert self._kv is not None
        watcher = await self._kv.watch(f"{self.cluster.site_id}.>")
        try:
            async for entry in watcher:
                if entry is None:  # the leases already there are delivered
                    self._token.run_sync_soon(ready.set)
                    continue
                deleted = entry.operation in (KV_DEL, KV_PURGE)
                value: Any = None if deleted else entry.value
                self._token.run_sync_soon(self._apply, entry.key, value)
        finally:
            await watcher.stop()  # type: ignore[no-untyped-call]
