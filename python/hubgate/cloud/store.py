"""The durable store: store-and-forward queues, transaction ids, local authorization.

One SQLite file in WAL mode. Whatever hubgate has promised to someone is
committed with `synchronous=FULL` (fsync before the method returns): enqueued
messages (callers answer a charger only after `enqueue_many` returned), local
list updates, refusals and operator decisions. A SIGKILL or power cut after
that loses nothing. Acknowledgements and cache bookkeeping commit without
fsync: a SIGKILL cannot undo them (the WAL write is in the kernel), a power
cut can, which at worst sends an acknowledged message once more.

Queues. One ordered queue per charge point (ordered by `seq`). A message leaves
the queue only in `acknowledge`, after the CSMS answered it, in the same commit
that records what the answer taught us (the CSMS transaction id of a 1.6
StartTransaction). The replay cursor is therefore the queue itself: the first
row left for a charge point is the next to send, across any restart.

What a message is. OCPP-J message ids are unique per connection only (1.6), and
some chargers start them again after every reconnect. A stored message is a
repeat of a queued one (the charger retrying a Call it got no answer to) only
when it has the same message id *and* comes over the same charger connection
or has the same action and payload (`payload_hash`); anything else is a new
message. Each message also has the id it goes to the CSMS with (`upstream_id`):
the charger's own, unless another queued message of that charge point already
uses it, then a new UUID; it is stored with the message, so a repeat after a
restart carries the same one.

Refusals. A message the CSMS answered with a CallError is moved to
`dead_letters` at once (replay goes on with the next one). When the message
began a transaction (a 1.6 StartTransaction, a 2.0.1 TransactionEvent), or the
CSMS's answer refused its id token, the transaction is *held*: its other
messages stay queued but are not sent until an operator releases it (a 1.6
transaction with the CSMS's transaction id to use) or discards them; a 1.6
message whose local transaction id has no CSMS id is never sent with it
(its transaction is held instead).

Delivery is exactly once unless the process dies after the CSMS has the
message and before the `acknowledge` commit (docs/ocpp.md gives the measured
size of that window), or the power fails shortly after it: then that message
is sent again with the same upstream message id (and, in 2.0.1, the same
seqNo), which is how a CSMS recognises a repeat.

Transaction ids. A 1.6 StartTransaction answered while offline gets a local
transaction id, negative (-1, -2, ...) so it never collides with a CSMS id.
When the replayed StartTransaction is answered, the CSMS's id is recorded, and
every later queued message of that charge point whose `transactionId` is the
local id is rewritten before it is sent.

Local authorization. Per charge point: the Local Authorization List (versioned,
changed only by SendLocalList Full or Differential) and the Authorization Cache
(fed from every IdTagInfo/IdTokenInfo the CSMS returns, bounded, evicting
non-Accepted entries first and then the least recently used). List entries
take priority and are never cached (OCPP 1.6 §3.5, 2.0.1 C10-C14, D01).

The class is synchronous and not thread-safe: `hubgate.cloud.queue` runs it on
one worker thread at a time, off the Trio loop.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from hubgate.cloud.store_schema import open_database

ACCEPTED = "Accepted"
"""The authorization status that lets a charge start (both OCPP versions)."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A charger-originated Call to keep until the CSMS has answered it."""

    charge_point: str
    message_id: str
    action: str
    payload: dict[str, Any]
    coalesce_key: str | None = None
    """For OfflineRule.LATEST: a pending message with the same key is replaced."""
    issue_transaction_id: bool = False
    """A 1.6 StartTransaction answered locally: the store issues its transaction id."""
    connection: str = ""
    """The charger connection it came over (a repeat on the same one is the same message)."""
    upstream_id: str | None = None
    """The id to send it to the CSMS with when not the charger's own (see the module docstring)."""


@dataclass(frozen=True, slots=True)
class Receipt:
    """What `enqueue_many` durably stored for one message."""

    seq: int
    local_transaction_id: int | None


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """A stored message, ready to send (transaction id already rewritten)."""

    seq: int
    charge_point: str
    message_id: str
    """The charger's message id."""
    action: str
    payload: dict[str, Any]
    upstream_id: str
    """The message id it goes to the CSMS with."""
    connection: str = ""
    transaction: str | None = None
    """The transaction it belongs to, as the charger names it (`transaction_key`)."""


@dataclass(frozen=True, slots=True)
class Hold:
    """A transaction whose messages wait for an operator decision."""

    charge_point: str
    transaction: str
    """As the charger names it: a 1.6 (local) transaction id, a 2.0.1 transactionId."""
    reason: str
    csms_transaction_id: int | None
    """The id the CSMS gave the transaction, when it gave one."""
    since: float
    messages: int
    """How many of its messages are queued."""


def transaction_key(payload: dict[str, Any]) -> str | None:
    """The transaction a message belongs to: 1.6 `transactionId`, 2.0.1 `transactionInfo`."""
    found = payload.get("transactionId")
    if found is None:
        info = payload.get("transactionInfo")
        found = info.get("transactionId") if isinstance(info, dict) else None
    return None if found is None else str(found)


def payload_hash(action: str, payload: dict[str, Any]) -> str:
    """What a message says, for telling a repeat from a new message with a reused id."""
    text = json.dumps([action, payload], sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


class ListUpdateStatus(StrEnum):
    """SendLocalList answer statuses (the same strings in 1.6 and 2.0.1)."""

    ACCEPTED = "Accepted"
    FAILED = "Failed"
    VERSION_MISMATCH = "VersionMismatch"


class AuthSource(StrEnum):
    """Where an offline authorization came from."""

    LOCAL_LIST = "local-list"
    CACHE = "cache"


@dataclass(frozen=True, slots=True)
class AuthRecord:
    """One identifier's authorization, version-neutral.

    `info` is the IdTagInfo (1.6) or IdTokenInfo (2.0.1) as the CSMS sent it;
    `status` and `expires_at` (epoch seconds) are lifted out of it for lookups.
    """

    key: str
    status: str
    expires_at: float | None
    info: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Authorization:
    """The answer to an offline Authorize: the record, where it came from, its status now."""

    record: AuthRecord
    source: AuthSource
    status: str


class Store:
    """The hubgate durable store in one SQLite file (see the module docstring)."""

    def __init__(self, path: str | Path, *, cache_size: int = 10_000) -> None:
        self._db = open_database(path)
        self._cache_size = cache_size
        self._in_transaction = False

    def close(self) -> None:
        """Close the database (everything is already on disk)."""
        self._db.close()

    @contextmanager
    def _transaction(self, *, fsync: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction; `fsync=False` commits survive a process kill, not a power cut.
        Inside `replicated`, part of its one transaction."""
        if self._in_transaction:
            yield self._db
            return
        self._db.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
        self._db.execute("BEGIN IMMEDIATE")
        self._in_transaction = True
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        finally:
            self._in_transaction = False
        self._db.execute("COMMIT")

    # -- replication (`hubgate.cluster.queue_replica`) ----------------------------

    def replica_position(self, stream: str) -> int:
        """The last entry of the replicated `stream` applied to this file (0: none)."""
        row = self._db.execute(
            "SELECT seq FROM replica_position WHERE stream = ?", (stream,)
        ).fetchone()
        return 0 if row is None else int(row[0])

    def replicated(
        self, stream: str, entries: Sequence[tuple[int, Callable[[Store], object]]]
    ) -> list[object]:
        """Apply entries of the replicated `stream` (position, operation on this store) and
        record the last position, all in one durable commit; the operations' results."""
        if not entries:
            return []
        with self._transaction() as db:
            results = [operation(self) for _, operation in entries]
            db.execute(
                "INSERT OR REPLACE INTO replica_position (stream, seq) VALUES (?, ?)",
                (stream, entries[-1][0]),
            )
        return results

    def receipt(self, item: Outgoing) -> Receipt | None:
        """The receipt of a queued message (as `enqueue_many` recognises a repeat), None
        once it left the queue."""
        row = self._db.execute(
            "SELECT seq, local_transaction_id FROM messages WHERE charge_point = ?"
            " AND message_id = ? AND (connection = ? OR payload_hash = ?) ORDER BY seq DESC",
            (
                item.charge_point,
                item.message_id,
                item.connection,
                payload_hash(item.action, item.payload),
            ),
        ).fetchone()
        return None if row is None else Receipt(*row)

    def queued_seq(self, charge_point: str, upstream_id: str) -> int | None:
        """The queue position of the message that goes to the CSMS as `upstream_id`."""
        row = self._db.execute(
            "SELECT seq FROM messages WHERE charge_point = ? AND upstream_id = ?",
            (charge_point, upstream_id),
        ).fetchone()
        return None if row is None else int(row[0])

    # -- queues ---------------------------------------------------------------

    def enqueue_many(self, items: Sequence[Outgoing], now: float | None = None) -> list[Receipt]:
        """Store messages in one durable commit (one fsync), in the given order.

        A repeat of a queued message (same message id, and the same connection or
        the same action and payload) gets the first one's receipt back (and the
        same local transaction id); anything else is stored.
        """
        stamp = time.time() if now is None else now
        receipts = []
        with self._transaction() as db:
            for item in items:
                digest = payload_hash(item.action, item.payload)
                again = db.execute(
                    "SELECT seq, local_transaction_id FROM messages WHERE charge_point = ?"
                    " AND message_id = ? AND (connection = ? OR payload_hash = ?)",
                    (item.charge_point, item.message_id, item.connection, digest),
                ).fetchone()
                if again is not None:  # the charger repeated a Call it got no answer to
                    receipts.append(Receipt(*again))
                    continue
                upstream_id = item.upstream_id or item.message_id
                taken = db.execute(
                    "SELECT 1 FROM messages WHERE charge_point = ? AND upstream_id = ?",
                    (item.charge_point, upstream_id),
                ).fetchone()
                if taken is not None:  # a new message under a reused id: a new id, the same
                    # in every copy of the store (`Store.replicated` applies it elsewhere too)
                    upstream_id = str(
                        uuid.uuid5(
                            uuid.NAMESPACE_URL,
                            f"{item.charge_point}/{item.message_id}/{digest}/{stamp}",
                        )
                    )
                local_id = None
                if item.issue_transaction_id:
                    local_id = self._issue_transaction_id(item.charge_point)
                if item.coalesce_key is not None:
                    db.execute(
                        "DELETE FROM messages WHERE charge_point = ? AND coalesce_key = ?",
                        (item.charge_point, item.coalesce_key),
                    )
                key = transaction_key(item.payload) if local_id is None else str(local_id)
                cursor = db.execute(
                    "INSERT INTO messages (charge_point, message_id, upstream_id, connection,"
                    " payload_hash, action, payload, coalesce_key, transaction_key,"
                    " local_transaction_id, enqueued_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        item.charge_point,
                        item.message_id,
                        upstream_id,
                        item.connection,
                        digest,
                        item.action,
                        json.dumps(item.payload, separators=(",", ":")),
                        item.coalesce_key,
                        key,
                        local_id,
                        stamp,
                    ),
                )
                assert cursor.lastrowid is not None
                receipts.append(Receipt(cursor.lastrowid, local_id))
        return receipts

    def _issue_transaction_id(self, charge_point: str) -> int:
        row = self._db.execute(
            "SELECT MIN(local_id) FROM transaction_ids WHERE charge_point = ?", (charge_point,)
        ).fetchone()
        local_id = min(row[0] or 0, 0) - 1
        self._db.execute(
            "INSERT INTO transaction_ids (charge_point, local_id) VALUES (?, ?)",
            (charge_point, local_id),
        )
        return local_id

    def pending(self, charge_point: str, limit: int = 256) -> list[QueuedMessage]:
        """The next messages to send to the CSMS for one charge point, oldest first.

        Messages of held transactions are left out. A 1.6 local transaction id is
        replaced by the CSMS's; the batch ends before a message whose id the CSMS
        has yet to give (its StartTransaction is queued ahead of it), and a message
        whose id it will never give (its StartTransaction is gone unanswered) has
        its transaction held.
        """
        rows = self._db.execute(
            "SELECT seq, message_id, upstream_id, connection, action, payload, transaction_key"
            " FROM messages AS m WHERE charge_point = ?1 AND NOT EXISTS (SELECT 1 FROM held"
            " WHERE held.charge_point = ?1 AND held.transaction_key = m.transaction_key)"
            " ORDER BY seq LIMIT ?2",
            (charge_point, limit),
        ).fetchall()
        batch: list[QueuedMessage] = []
        orphaned: set[str] = set()
        for seq, message_id, upstream_id, connection, action, text, key in rows:
            if key in orphaned:
                continue
            payload = json.loads(text)
            local_id = payload.get("transactionId")
            if isinstance(local_id, int) and local_id < 0:
                csms_id = self.csms_transaction_id(charge_point, local_id)
                if csms_id is None:
                    if self._start_queued(charge_point, local_id):
                        break
                    with self._transaction() as db:
                        reason = f"no CSMS transaction id for {local_id}"
                        self._hold(db, charge_point, str(local_id), reason, None)
                    orphaned.add(str(local_id))
                    continue
                payload["transactionId"] = csms_id
            batch.append(
                QueuedMessage(
                    seq, charge_point, message_id, action, payload, upstream_id, connection, key
                )
            )
        return batch

    def _start_queued(self, charge_point: str, local_id: int) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM messages WHERE charge_point = ? AND local_transaction_id = ?",
            (charge_point, local_id),
        ).fetchone()
        return row is not None

    @staticmethod
    def _hold(
        db: sqlite3.Connection, charge_point: str, key: str, reason: str, csms_id: object
    ) -> None:
        db.execute(
            "INSERT OR IGNORE INTO held (charge_point, transaction_key, reason,"
            " csms_transaction_id, since) VALUES (?,?,?,?,?)",
            (charge_point, key, reason, csms_id if isinstance(csms_id, int) else None, time.time()),
        )

    def csms_transaction_id(self, charge_point: str, local_id: int) -> int | None:
        """The CSMS's id for a locally issued transaction id, once the CSMS has given it."""
        row = self._db.execute(
            "SELECT csms_id FROM transaction_ids WHERE charge_point = ? AND local_id = ?",
            (charge_point, local_id),
        ).fetchone()
        return None if row is None else row[0]

    def local_transaction_id(self, charge_point: str, csms_id: int) -> int | None:
        """The local id the charger knows for a CSMS transaction id, if it began offline."""
        row = self._db.execute(
            "SELECT local_id FROM transaction_ids WHERE charge_point = ? AND csms_id = ?",
            (charge_point, csms_id),
        ).fetchone()
        return None if row is None else int(row[0])

    def acknowledge(self, seq: int, answer: dict[str, Any], hold: str | None = None) -> None:
        """The CSMS answered message `seq` with CallResult `answer`: remove it.

        `hold`: the answer refused the message's transaction (its id token), for
        this reason; the transaction's other messages are held (`holds`).
        Committed without fsync: it survives a kill of the process; a power cut
        right after may undo it, and then the message is sent once more with
        its original message id (at least once, never lost). Replay is thus
        not bound by the disk's fsync latency. A message already gone (a newer
        one of its coalesce key replaced it while it was sent) is left alone.
        """
        with self._transaction(fsync=False) as db:
            row = db.execute(
                "SELECT charge_point, local_transaction_id, transaction_key FROM messages"
                " WHERE seq = ?",
                (seq,),
            ).fetchone()
            if row is None:
                return
            charge_point, local_id, key = row
            csms_id = answer.get("transactionId") if local_id is not None else None
            if isinstance(csms_id, int):
                db.execute(
                    "UPDATE transaction_ids SET csms_id = ? WHERE charge_point = ? AND local_id = ?",
                    (csms_id, charge_point, local_id),
                )
            if hold is not None and key is not None:
                self._hold(db, charge_point, key, hold, csms_id)
            db.execute("DELETE FROM messages WHERE seq = ?", (seq,))

    def refuse(self, seq: int, error: str, hold: str | None = None) -> None:
        """The CSMS answered `seq` with CallError `error`: move it to dead letters; with
        `hold` (it began a transaction), hold the transaction's other messages for it.

        A message already gone (replaced by a newer one of its coalesce key) is left alone.
        """
        with self._transaction() as db:
            row = db.execute(
                "SELECT charge_point, transaction_key FROM messages WHERE seq = ?", (seq,)
            ).fetchone()
            if row is None:
                return
            charge_point, key = row
            self._bury(db, "seq = ?", (seq,), error)
            if hold is not None and key is not None:
                self._hold(db, charge_point, key, hold, None)

    @staticmethod
    def _bury(db: sqlite3.Connection, where: str, args: tuple[Any, ...], error: str) -> int:
        """Move the messages `where` selects to dead letters; how many."""
        db.execute(
            "INSERT INTO dead_letters (seq, charge_point, message_id, action, payload,"
            f" enqueued_at, error) SELECT seq, charge_point, message_id, action, payload,"
            f" enqueued_at, ? FROM messages WHERE {where}",
            (error, *args),
        )
        return db.execute(f"DELETE FROM messages WHERE {where}", args).rowcount

    # -- operator decisions on held transactions ---------------------------------

    def holds(self) -> list[Hold]:
        """Every held transaction, oldest first, with how many of its messages wait."""
        rows = self._db.execute(
            "SELECT h.charge_point, h.transaction_key, h.reason, h.csms_transaction_id, h.since,"
            " (SELECT COUNT(*) FROM messages AS m WHERE m.charge_point = h.charge_point"
            " AND m.transaction_key = h.transaction_key) FROM held AS h ORDER BY h.since"
        ).fetchall()
        return [Hold(*row) for row in rows]

    def release(self, charge_point: str, transaction: str, csms_transaction_id: int | None) -> Hold:
        """Send a held transaction's messages after all; a 1.6 local transaction id is
        mapped to `csms_transaction_id`, else to the id the CSMS gave (ValueError if none)."""
        with self._transaction() as db:
            hold = self._held(charge_point, transaction)
            local_id = _local_id(transaction)
            if local_id is not None:
                csms_id = csms_transaction_id or hold.csms_transaction_id
                if csms_id is None:
                    raise ValueError(
                        f"{charge_point} transaction {transaction}: the CSMS gave no transaction"
                        " id; give the one to send its messages with"
                    )
                db.execute(
                    "INSERT OR REPLACE INTO transaction_ids (charge_point, local_id, csms_id)"
                    " VALUES (?,?,?)",
                    (charge_point, local_id, csms_id),
                )
            db.execute(
                "DELETE FROM held WHERE charge_point = ? AND transaction_key = ?",
                (charge_point, transaction),
            )
        return hold

    def discard(self, charge_point: str, transaction: str) -> Hold:
        """Never send a held transaction's messages: they go to dead letters."""
        with self._transaction() as db:
            hold = self._held(charge_point, transaction)
            self._bury(
                db,
                "charge_point = ? AND transaction_key = ?",
                (charge_point, transaction),
                "discarded by the operator",
            )
            db.execute(
                "DELETE FROM held WHERE charge_point = ? AND transaction_key = ?",
                (charge_point, transaction),
            )
        return hold

    def _held(self, charge_point: str, transaction: str) -> Hold:
        for hold in self.holds():
            if (hold.charge_point, hold.transaction) == (charge_point, transaction):
                return hold
        raise KeyError(f"{charge_point} has no held transaction {transaction!r}")

    def pending_count(self, charge_point: str | None = None) -> int:
        """How many messages are queued, held ones included (for one charge point or all)."""
        if charge_point is None:
            row = self._db.execute("SELECT COUNT(*) FROM messages").fetchone()
        else:
            row = self._db.execute(
                "SELECT COUNT(*) FROM messages WHERE charge_point = ?", (charge_point,)
            ).fetchone()
        return int(row[0])

    def backlog(self, charge_point: str) -> bool:
        """Whether messages of the charge point wait to be sent (held ones do not)."""
        row = self._db.execute(
            "SELECT 1 FROM messages AS m WHERE charge_point = ?1 AND NOT EXISTS (SELECT 1"
            " FROM held WHERE held.charge_point = ?1 AND held.transaction_key = m.transaction_key)"
            " LIMIT 1",
            (charge_point,),
        ).fetchone()
        return row is not None

    def charge_points_with_pending(self) -> list[str]:
        """Every charge point with a message waiting for the CSMS."""
        rows = self._db.execute("SELECT DISTINCT charge_point FROM messages ORDER BY 1")
        return [row[0] for row in rows]

    def dead_letters(self) -> list[tuple[int, str, str, str]]:
        """(seq, charge point, action, error) of every message given up on."""
        return self._db.execute(
            "SELECT seq, charge_point, action, error FROM dead_letters ORDER BY seq"
        ).fetchall()

    # -- local authorization list ------------------------------------------------

    def local_list_version(self, charge_point: str) -> int:
        """GetLocalListVersion: the list's version, 0 when no list or an empty one."""
        empty = (
            self._db.execute(
                "SELECT 1 FROM local_list WHERE charge_point = ? LIMIT 1", (charge_point,)
            ).fetchone()
            is None
        )
        row = self._db.execute(
            "SELECT version FROM local_list_versions WHERE charge_point = ?", (charge_point,)
        ).fetchone()
        return 0 if empty or row is None else int(row[0])

    def update_local_list(
        self,
        charge_point: str,
        version: int,
        *,
        full: bool,
        updates: Sequence[tuple[str, AuthRecord | None]],
    ) -> ListUpdateStatus:
        """SendLocalList: replace (full) or patch (differential) the list, durably.

        `updates` pairs a key with its record, or with None to remove it (only
        meaningful in a differential update). A differential update whose
        version is not above the current one is a VersionMismatch (OCPP 1.6
        §5.15; the same in 2.0.1) and changes nothing.
        """
        with self._transaction() as db:
            if not full and version <= self.local_list_version(charge_point):
                return ListUpdateStatus.VERSION_MISMATCH
            if full:
                db.execute("DELETE FROM local_list WHERE charge_point = ?", (charge_point,))
            for key, record in updates:
                if record is None:
                    db.execute(
                        "DELETE FROM local_list WHERE charge_point = ? AND key = ?",
                        (charge_point, key),
                    )
                    continue
                db.execute(
                    "INSERT OR REPLACE INTO local_list (charge_point, key, status, expires_at,"
                    " info) VALUES (?,?,?,?,?)",
                    (charge_point, key, record.status, record.expires_at, json.dumps(record.info)),
                )
                db.execute(
                    "DELETE FROM auth_cache WHERE charge_point = ? AND key = ?", (charge_point, key)
                )
            db.execute(
                "INSERT OR REPLACE INTO local_list_versions (charge_point, version) VALUES (?, ?)",
                (charge_point, version),
            )
        return ListUpdateStatus.ACCEPTED

    # -- authorization cache and lookup ------------------------------------------

    def cache_authorization(self, charge_point: str, record: AuthRecord, now: float) -> None:
        """Remember what the CSMS said about an identifier; list identifiers are not cached."""
        with self._transaction(fsync=False) as db:
            listed = db.execute(
                "SELECT 1 FROM local_list WHERE charge_point = ? AND key = ?",
                (charge_point, record.key),
            ).fetchone()
            if listed is not None:
                return
            db.execute(
                "INSERT OR REPLACE INTO auth_cache (charge_point, key, status, expires_at, info,"
                " last_used) VALUES (?,?,?,?,?,?)",
                (
                    charge_point,
                    record.key,
                    record.status,
                    record.expires_at,
                    json.dumps(record.info),
                    now,
                ),
            )
            db.execute(
                "DELETE FROM auth_cache WHERE charge_point = ?1 AND key IN (SELECT key FROM"
                " auth_cache WHERE charge_point = ?1 ORDER BY status = ?2 DESC, last_used DESC"
                " LIMIT -1 OFFSET ?3)",
                (charge_point, ACCEPTED, self._cache_size),
            )

    def clear_cache(self, charge_point: str) -> None:
        """ClearCache: forget every cached identifier of a charge point."""
        with self._transaction() as db:
            db.execute("DELETE FROM auth_cache WHERE charge_point = ?", (charge_point,))

    def authorize(self, charge_point: str, key: str, now: float) -> Authorization | None:
        """Answer an Authorize offline: the list first, then the cache; None if unknown.

        An Accepted entry past its expiry reports Expired. A cache hit refreshes
        the entry's last use, so the least recently used entries are evicted.
        """
        row = self._db.execute(
            "SELECT status, expires_at, info FROM local_list WHERE charge_point = ? AND key = ?",
            (charge_point, key),
        ).fetchone()
        source = AuthSource.LOCAL_LIST
        if row is None:
            row = self._db.execute(
                "SELECT status, expires_at, info FROM auth_cache WHERE charge_point = ? AND key = ?",
                (charge_point, key),
            ).fetchone()
            source = AuthSource.CACHE
            if row is None:
                return None
            with self._transaction(fsync=False) as db:
                db.execute(
                    "UPDATE auth_cache SET last_used = ? WHERE charge_point = ? AND key = ?",
                    (now, charge_point, key),
                )
        status, expires_at, info = row
        record = AuthRecord(key, status, expires_at, json.loads(info))
        if status == ACCEPTED and expires_at is not None and expires_at <= now:
            status = "Expired"
        return Authorization(record, source, status)


def _local_id(transaction: str) -> int | None:
    """A 1.6 local (negative) transaction id, or None for any other transaction name."""
    try:
        number = int(transaction)
    except ValueError:
        return None
    return number if number < 0 else None
