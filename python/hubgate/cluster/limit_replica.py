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

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import trio

from hubgate.cluster.kv_mirror import KvMirror, key_part, key_text
from hubgate.cluster.link import NatsLink
from hubgate.config.services import Cluster
from hubgate.control.limits import AuditAction, AuditEntry, Limit, LimitBook, LimitSource

log = logging.getLogger(__name__)

BUCKET = "hubgate_limits"
REPLICATED = frozenset({LimitSource.API, LimitSource.MODBUS_SERVER, LimitSource.CSMS})


def key(site_id: str, source: LimitSource, target: str) -> str:
    """The bucket key of `source`'s lease on `target` (KV keys take no '#')."""
    return f"{site_id}.{source.value}.{key_part(target)}"


def parse_key(site_id: str, text: str) -> tuple[LimitSource, str] | None:
    """The source and target of a bucket key of this site; None for anything else."""
    site, _, rest = text.partition(".")
    source, _, encoded = rest.partition(".")
    if site != site_id or not encoded:
        return None
    try:
        return LimitSource(source), key_text(encoded)
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
        self.cluster = cluster
        self.book = book
        self.clock = clock
        self.wall_clock = wall_clock
        self._applying = False
        self.mirror = KvMirror(link, cluster, BUCKET, "limit", self._apply)
        book.listeners.append(self._changed)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Follow the bucket and write this gateway's changes into it, for ever; started
        once the leases already in the bucket are in the book."""
        await self.mirror.run(task_status=task_status)

    # -- this gateway's changes -----------------------------------------------------------

    def _changed(self, entry: AuditEntry, _previous: Limit | None) -> None:
        if self._applying or entry.source not in REPLICATED:
            return
        name = key(self.cluster.site_id, entry.source, entry.target)
        if entry.action is AuditAction.SET:
            until = None
            if entry.expires_at is not None:
                until = self.wall_clock() + (entry.expires_at - self.clock())
            self.mirror.put(name, encode(self.mirror.writer, entry, until))
        elif entry.action is AuditAction.CLEARED:
            self.mirror.put(name, None)
        # expired: each gateway on its own clock

    # -- the other gateway's --------------------------------------------------------------

    async def _apply(self, name: str, value: bytes | None) -> None:
        """One bucket entry into the book (`value` None: deleted)."""
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
            if remote.writer == self.mirror.writer:
                return  # its own change coming back: in the book already
            lease_s = None if remote.until is None else remote.until - self.wall_clock()
            if lease_s is not None and lease_s <= 0:
                return  # ran out already
            self.book.set(
                target, source, remote.limit, now=now, lease_s=lease_s, origin=remote.origin
            )
        finally:
            self._applying = False
