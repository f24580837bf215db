"""Leadership on Trio: the leader lease (`hubgate.cluster.lease`) kept in a JetStream KV bucket.

    leadership = Leadership(link, cluster, timing)
    await nursery.start(leadership.run)      # reads the key, renews or takes over
    epoch = leadership.epoch(trio.current_time())   # None: do not command
    leadership.bequeath(failsafes, held); leadership.inherited()   # what passes to the next leader
    await leadership.release()               # hand over (SIGTERM)

The key is `<site_id>` in the bucket `hubgate_leases` (replicas from `[cluster]`). It is
read every `poll_s`; the lease renews and take-overs are compare-and-set writes on its
revision (`KeyValue.update(..., last=revision)`). Every NATS call has a deadline well
inside the renewal period, so a hung cluster never keeps the leader commanding past
its lease: `epoch()` turns None by the leader's own clock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import trio
from nats.aio.client import Client
from nats.js.errors import (
    BadRequestError,
    KeyDeletedError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
)
from nats.js.kv import KeyValue

from hubgate.cluster.buckets import open_bucket
from hubgate.cluster.lease import LeaderLease, LeaseTiming, Role, Write
from hubgate.cluster.link import ClusterUnavailableError, NatsLink
from hubgate.config.services import Cluster
from hubgate.control.authority import Held, Inheritance

log = logging.getLogger(__name__)

BUCKET = "hubgate_leases"


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
    ) -> None:
        self.link = link
        self.cluster = cluster
        self.key = cluster.site_id
        self.lease = LeaderLease(cluster.node, timing)
        self.poll_s = poll_s or min(0.25, timing.ttl_s / 12)
        self.clock = clock
        self._kv: KeyValue | None = None
        self._changed = trio.Event()
        self._role = Role.STANDBY
        self._serving = False
        self._told = False
        """Whether this gateway has said what it found at its first read of the key."""

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

    def bequeath(self, failsafes: frozenset[str], held: Mapping[str, Held]) -> None:
        """The connectors a successor may count on, carried by the next renewal or the
        release, and their last commands and draws, by the release
        (`hubgate.control.authority.Succession`)."""
        self.lease.failsafes, self.lease.held = failsafes, held

    def inherited(self) -> Inheritance:
        """What the lease's record said when this gateway took it over."""
        return self.lease.inheritance

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
        task_status.started()
        while True:
            await self.step()
            await trio.sleep(self.poll_s)

    async def step(self) -> None:
        """One round: read the key, make the write that is due, tell who waits."""
        lease = self.lease
        within_s = lease.timing.renew_every_s / 2
        try:
            revision, data = await self.link.run(self._get, within_s=within_s)
        except (ClusterUnavailableError, OSError) as exc:
            log.debug("cluster: lease not read: %s", exc)
        except Exception as exc:  # nats-py's errors: a failover inside the cluster
            log.debug("cluster: lease not read: %s", exc)
        else:
            lease.observe(revision, data, self.clock())
        write = lease.due(self.clock())
        if write is not None:
            await self._write(write, within_s)
        self._announce()
        if not self._told and lease.revision is not None:
            self._told = True
            self._tell_whom_it_watches()

    async def release(self, within_s: float = 2.0) -> bool:
        """Hand over: stop commanding at once and tell the standby (True once written;
        tried again until `within_s` has passed)."""
        write = self.lease.release()
        self._announce()
        if write is None:
            return False
        deadline = self.clock() + within_s
        while (left := deadline - self.clock()) > 0:
            if await self._write(write, left):
                return True
            if self.lease.revision is None:
                return False  # refused: the key changed, nothing to hand over
            await trio.sleep(min(self.poll_s, left))
        return False

    async def _write(self, write: Write, within_s: float) -> bool:
        lease = self.lease
        sent_at = self.clock()
        lease.sending(write, sent_at)
        try:
            revision = await self.link.run(lambda nc: self._update(nc, write), within_s=within_s)
        except KeyWrongLastSequenceError:
            lease.refused()
            return False
        except (ClusterUnavailableError, OSError) as exc:
            log.debug("cluster: lease write unanswered: %s", exc)
            return False
        except BadRequestError as exc:  # a wrong last revision in another spelling
            log.info("cluster: lease write refused: %s", exc)
            lease.refused()
            return False
        except Exception as exc:  # nats-py's errors: a failover inside the cluster
            log.debug("cluster: lease write failed: %s", exc)
            return False
        lease.wrote(write, revision, sent_at)
        return True

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
            epoch = self.lease.epoch
            log.warning(
                "cluster: %s is %s%s",
                self.cluster.node,
                role.value,
                "" if epoch is None else f" (epoch {epoch})",
            )
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
