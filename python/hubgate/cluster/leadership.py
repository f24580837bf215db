"""Leadership on Trio: the leader lease (`hubgate.cluster.lease`) kept in a JetStream KV bucket.

    leadership = Leadership(link, cluster, timing)
    await nursery.start(leadership.run)      # reads the key, renews or takes over
    epoch = leadership.epoch(trio.current_time())   # None: do not command
    leadership.bequeath(failsafes, held); leadership.inherited()   # what passes to the next leader
    await leadership.release()               # hand over (SIGTERM)

`on_lead` is called each time the gateway takes the lead (the runtime: every Modbus
master may dial at once, `ModbusPool.dial_again`).

The key is `<site_id>` in the bucket `hubgate_leases` (replicas from `[cluster]`). It is
read every `poll_s`, and by a standby at once whenever a gateway writes it (a plain NATS
subscription to the key's subject wakes the read: what counts is what the read finds, a
refused write wakes it too), so it sees the leader's last renewal, or a release, as it is
made, not up to `poll_s` later; the lease renews and take-overs are compare-and-set writes
on its revision (`KeyValue.update(..., last=revision)`). The subscription hears a write as
it is published, before the stream's replicas have taken it, so the read it wakes may still
find the key at the revision the write was made against: then it reads again every
`REREAD_S` until it finds the key past it (for at most a renewal period). Every NATS call
has a deadline well inside the renewal period, so a hung cluster never keeps the leader
commanding past its lease: `epoch()` turns None by the leader's own clock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import suppress
from typing import Any

import trio
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import Header
from nats.js.errors import (
    BadRequestError,
    KeyDeletedError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
)
from nats.js.kv import KeyValue

from hubgate.cluster.buckets import open_bucket
from hubgate.cluster.lease import LeaderLease, LeaseTiming, Role, Write
from hubgate.cluster.link import NatsLink
from hubgate.config.services import Cluster
from hubgate.control.authority import Held, Inheritance

log = logging.getLogger(__name__)

BUCKET = "hubgate_leases"
REREAD_S = 0.02
"""How soon a standby reads the key again when a write went by that it did not find yet."""


class Leadership:
    """This gateway's part in the cluster, kept up to date by `run`."""

    def __init__(
        self,
        link: NatsLink,
        cluster: Cluster,
        timing: LeaseTiming,
        *,
        poll_s: float | None = None,
        clock: Callable[[], float] = trio.current_time,
        on_lead: Callable[[], None] = lambda: None,
    ) -> None:
        self.link = link
        self.cluster = cluster
        self.key = cluster.site_id
        self.lease = LeaderLease(cluster.node, timing)
        self.poll_s = poll_s or min(0.25, timing.ttl_s / 12)
        self.clock = clock
        self.on_lead = on_lead
        self._kv: KeyValue | None = None
        self._changed = trio.Event()
        self._written = trio.Event()
        """Set when a write of the key went by (`_wake_on_writes`)."""
        self._went_by = (0, float("-inf"))
        """The highest revision a write that went by was made against, and when it went
        by: a read that finds the key at or below it was answered before the stream took
        that write (`_pause`)."""
        self._promoted = trio.Event()
        self._role = Role.STANDBY
        self._serving = False
        self._told = False
        """Whether this gateway has said what it found at its first read of the key."""
        self._writing = trio.Lock()
        self._failing: dict[str, float] = {}
        """"read", "write": since when they have failed (`_failed`)."""

    @property
    def role(self) -> Role:
        """LEADER while this gateway may command."""
        return Role.LEADER if self.epoch() is not None else Role.STANDBY

    def epoch(self) -> int | None:
        """The epoch this gateway may command under now, None when it may not
        (`hubgate.control.authority.Authority`)."""
        return self.lease.epoch_now(self.clock())

    def holds(self, epoch: int) -> bool:
        """Whether a command under `epoch` may go out now."""
        return self.lease.holds(epoch, self.clock())

    def bequeath(self, failsafes: Mapping[str, float], held: Mapping[str, Held]) -> None:
        """The connectors a successor may count on, carried by the next renewal or the
        release, and their last commands and draws, by the release
        (`hubgate.control.authority.Succession`)."""
        self.lease.failsafes, self.lease.held = failsafes, held

    def inherited(self) -> Inheritance:
        """What the lease's record said when this gateway took it over."""
        return self.lease.inheritance

    async def promoted(self) -> None:
        """Return the next time this gateway takes the lead
        (`hubgate.control.authority.Promotion`)."""
        await self._promoted.wait()

    async def wait_role(self, role: Role) -> None:
        """Return once this gateway has `role`."""
        while self.role is not role:
            await self._changed.wait()

    @property
    def serving(self) -> bool:
        """Whether this gateway takes the OCPP chargers' connections: while it leads, and
        as the successor of a leader that no longer commands (`LeaderLease.successor`),
        so that chargers leaving the old leader find it before it may command them."""
        return self.role is Role.LEADER or self.lease.successor(self.clock())

    async def wait_serving(self, serving: bool) -> None:
        """Return once `serving` is as asked."""
        while self.serving is not serving:
            await self._changed.wait()

    # -- running ---------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Read, renew, take over, for ever; started once the bucket is there."""
        self._kv = await open_bucket(self.link, BUCKET, self.cluster.replicas, "lease")
        async with trio.open_nursery() as nursery:
            await nursery.start(self._wake_on_writes)
            task_status.started()
            await self._steps()

    async def _steps(self) -> None:
        while True:
            await self.step()
            asleep, pause = self.clock(), self._pause()
            with trio.move_on_after(pause):
                if self.lease.role is Role.LEADER:
                    await trio.sleep_forever()  # (its own renewals would wake it)
                await self._written.wait()
            self._written = trio.Event()
            late_s = self.clock() - asleep - pause
            if late_s >= self.lease.timing.renew_every_s:
                log.warning(
                    "cluster: %s read the lease %.1f s late (this process blocked or starved"
                    " of CPU): renewals and a take-over come that much later",
                    self.cluster.node,
                    late_s,
                )

    async def _wake_on_writes(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Subscribe to the key's subject: each write that goes by wakes a standby's next
        read at once (the polls go on beside it; a subscription nats-py makes again after
        a reconnection). Started once subscribed, or once a try failed."""
        token = trio.lowlevel.current_trio_token()

        def written(last: int) -> None:
            self._went_by = max(self._went_by[0], last), self.clock()
            self._written.set()

        async def went_by(message: Msg) -> None:
            last = (message.headers or {}).get(Header.EXPECTED_LAST_SUBJECT_SEQUENCE, "")
            with suppress(trio.RunFinishedError):
                token.run_sync_soon(written, int(last) if last.isdigit() else 0)

        subject = f"$KV.{BUCKET}.{self.key}"
        while True:
            try:
                subscription = await self.link.run(
                    lambda nc: nc.subscribe(subject, cb=went_by), within_s=2.0
                )
                break
            except Exception as exc:  # not connected yet: the polls read meanwhile
                log.debug("cluster: lease writes not followed yet: %s", exc)
            task_status.started()
            task_status = trio.TASK_STATUS_IGNORED
            await trio.sleep(1.0)
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            with trio.move_on_after(1.0) as cleanup:
                cleanup.shield = True
                with suppress(Exception):
                    await self.link.run(lambda nc: subscription.unsubscribe(), within_s=1.0)

    def _pause(self) -> float:
        """Until the next step: `poll_s`, or less when a standby takes the chargers or a
        silent leader's lease before then (not up to `poll_s` after that moment), or
        `REREAD_S` while a write that went by is not in what the key was read as."""
        now = self.clock()
        wake = self.lease.wake_at(now)
        pause = self.poll_s if wake is None else min(self.poll_s, wake - now)
        last, at = self._went_by
        revision = self.lease.revision
        if revision is not None and revision <= last and now - at < self.lease.timing.renew_every_s:
            return min(pause, REREAD_S)
        return pause

    async def step(self) -> None:
        """One round: read the key, make the write that is due, tell who waits."""
        lease = self.lease
        within_s = lease.timing.renew_every_s / 2
        await self._read(within_s)
        write = lease.due(self.clock())
        if write is not None:
            async with self._writing:
                if not await self._write(write, within_s) and lease.revision is None:
                    await self._read(within_s)  # refused: what the key holds, now not a poll later
        self._announce()
        if not self._told and lease.revision is not None:
            self._told = True
            self._tell_whom_it_watches()

    async def release(self, within_s: float = 2.0) -> bool:
        """Hand over: stop commanding at once and tell the standby (True once written;
        tried again until `within_s` has passed). A write of this gateway's in flight
        (a renewal) is answered first, and the release goes against the revision it made."""
        lease = self.lease
        lease.release()
        self._announce()
        deadline = self.clock() + within_s
        async with self._writing:
            while (left := deadline - self.clock()) > 0 and not lease.handed_over:
                if lease.role is not Role.LEADER:
                    return False  # another wrote the key: nothing to hand over
                write = lease.release()
                if write is None:  # refused after a write of its own went unanswered
                    await self._read(left)
                    if lease.revision is not None:
                        continue
                elif await self._write(write, left) or lease.revision is None:
                    continue  # written, or refused: read before the next try
                await trio.sleep(min(self.poll_s, max(0.0, deadline - self.clock())))
        self._announce()
        return lease.handed_over

    async def _read(self, within_s: float) -> None:
        try:
            revision, data = await self.link.run(self._get, within_s=within_s)
        except Exception as exc:  # not connected, no answer, nats-py's errors (a failover)
            self._failed("read", exc)
        else:
            self._through("read")
            self.lease.observe(revision, data, self.clock())

    async def _write(self, write: Write, within_s: float) -> bool:
        """Under `_writing`: one write at a time, each answered before the next is made."""
        lease = self.lease
        what = _kind(write)
        sent_at = self.clock()
        lease.sending(write, sent_at)
        try:
            revision = await self.link.run(lambda nc: self._update(nc, write), within_s=within_s)
        except (KeyWrongLastSequenceError, BadRequestError) as exc:  # BadRequest: another spelling
            self._through("write")
            log.info(
                "cluster: %s's lease %s refused (the key changed): %s", self.cluster.node, what, exc
            )
            lease.refused()
            return False
        except Exception as exc:  # not connected, no answer, nats-py's errors (a failover)
            self._failed(what, exc)
            return False
        self._through("write")
        lease.wrote(write, revision, sent_at)
        log.debug("cluster: %s wrote its %s (revision %d)", self.cluster.node, what, revision)
        return True

    def _failed(self, what: str, error: BaseException) -> None:
        """A read or write of the lease that did not come through: a warning at the first
        of a row (with why), debug after."""
        kind = "read" if what == "read" else "write"
        if kind in self._failing:
            log.debug("cluster: lease %s failed: %r", what, error)
            return
        self._failing[kind] = self.clock()
        log.warning(
            "cluster: %s (%s) cannot %s: %s; trying again every %.2g s",
            self.cluster.node,
            self._where(),
            "read the lease" if kind == "read" else f"write its {what}",
            _reason(error),
            self.poll_s,
        )

    def _through(self, kind: str) -> None:
        """A read or write came through: say so when some had failed before."""
        since = self._failing.pop(kind, None)
        if since is not None:
            log.warning(
                "cluster: %s %ss the lease again (%.1f s after the first failure)",
                self.cluster.node,
                kind,
                self.clock() - since,
            )

    def _where(self) -> str:
        """What this gateway is in the lease's eyes, for a log line."""
        lease = self.lease
        if lease.role is Role.LEADER:
            return f"leader, epoch {lease.epoch}"
        record = lease.record
        if record is None:
            return "standby"
        return f"standby, {record.holder or 'nobody'} {'released' if record.released else 'leads'}"

    def _tell_whom_it_watches(self) -> None:
        """After the first read of the key: a standby says who leads."""
        record = self.lease.record
        if self._role is Role.LEADER or record is None:
            return  # said by `_announce`, or taken at the next round
        log.warning(
            "cluster: %s is standby (%s %s, epoch %d)",
            self.cluster.node,
            record.holder,
            "handed over" if record.released else "leads",
            record.epoch,
        )

    def _announce(self) -> None:
        role, serving = self.role, self.serving
        if role is self._role and serving is self._serving:
            return
        if role is not self._role:
            lease, detail = self.lease, ""
            if role is Role.LEADER:
                detail = f" (epoch {lease.epoch})"
                self.on_lead()
                self._promoted.set()
                self._promoted = trio.Event()
            elif lease.resigned:
                detail = ", handing over"
            elif lease.role is Role.LEADER:
                detail = f", its lease of epoch {lease.epoch} ran out unrenewed"
            log.warning("cluster: %s is %s%s", self.cluster.node, role.value, detail)
        elif serving and self.lease.record is not None:
            log.warning(
                "cluster: %s takes the OCPP chargers (%s %s), commanding once it leads",
                self.cluster.node,
                self.lease.record.holder,
                "handed over" if self.lease.record.released else "silent",
            )
        self._role, self._serving = role, serving
        self._changed.set()
        self._changed = trio.Event()

    # -- on the asyncio side ---------------------------------------------------------------

    async def _get(self, nc: Client) -> tuple[int, bytes | None]:
        assert self._kv is not None
        try:
            entry = await self._kv.get(self.key)
        except KeyDeletedError as gone:
            entry = gone.entry
            return (0 if entry is None else int(entry.revision or 0)), None
        except KeyNotFoundError:
            return 0, None
        return int(entry.revision or 0), entry.value

    async def _update(self, nc: Client, write: Write) -> int:
        assert self._kv is not None
        revision: Any = await self._kv.update(self.key, write.record.encode(), last=write.last)
        return int(revision)


def _kind(write: Write) -> str:
    """A write's name in the log."""
    if write.record.released:
        return "release"
    return "take-over" if write.record.epoch == 0 else "renewal"


def _reason(error: BaseException) -> str:
    """An error for a log line: its message, or its type when it has none (nats-py's
    timeouts)."""
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
