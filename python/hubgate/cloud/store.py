"""The durable store: store-and-forward queues, transaction ids, local authorization.

One SQLite file in WAL mode. Whatever hubgate has promised to someone is
committed with `synchronous=FULL` (fsync before the method returns): enqueued
messages (callers answer a charger only after `enqueue_many` returned), local
list updates, dead letters. A SIGKILL or power cut after that loses nothing.
Acknowledgements and cache bookkeeping commit without fsync: a SIGKILL cannot
undo them (the WAL write is in the kernel), a power cut can, which at worst
sends an acknowledged message once more.

Queues. One ordered queue per charge point (ordered by `seq`). A message leaves
the queue only in `acknowledge`, after the CSMS answered it, in the same commit
that records what the answer taught us (the CSMS transaction id of a 1.6
StartTransaction). The replay cursor is therefore the queue itself: the first
row left for a charge point is the next to send, across any restart. A message
the CSMS answered with a CallError is retried up to `max_attempts` times and
then moved to `dead_letters`, never silently dropped.

Delivery is exactly once unless the process dies between the CSMS's answer and
the `acknowledge` commit (microseconds), or the power fails shortly after it:
then that message is sent again with the same OCPP message id (and, in 2.0.1,
the same seqNo), which is how a CSMS recognises a repeat.

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

import json
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    charge_point TEXT NOT NULL,
    message_id TEXT NOT NULL,
    action TEXT NOT NULL,
    payload TEXT NOT NULL,
    coalesce_key TEXT,
    local_transaction_id INTEGER,
    enqueued_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS messages_by_charge_point ON messages (charge_point, seq);
CREATE UNIQUE INDEX IF NOT EXISTS messages_by_message_id ON messages (charge_point, message_id);
CREATE UNIQUE INDEX IF NOT EXISTS messages_latest
    ON messages (charge_point, coalesce_key) WHERE coalesce_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS dead_letters (
    seq INTEGER PRIMARY KEY,
    charge_point TEXT NOT NULL,
    message_id TEXT NOT NULL,
    action TEXT NOT NULL,
    payload TEXT NOT NULL,
    enqueued_at REAL NOT NULL,
    error TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS transaction_ids (
    charge_point TEXT NOT NULL,
    local_id INTEGER NOT NULL,
    csms_id INTEGER,
    PRIMARY KEY (charge_point, local_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS local_list_versions (
    charge_point TEXT PRIMARY KEY,
    version INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS local_list (
    charge_point TEXT NOT NULL,
    key TEXT NOT NULL,
    status TEXT NOT NULL,
    expires_at REAL,
    info TEXT NOT NULL,
    PRIMARY KEY (charge_point, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS replica_position (
    stream TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS auth_cache (
    charge_point TEXT NOT NULL,
    key TEXT NOT NULL,
    status TEXT NOT NULL,
    expires_at REAL,
    info TEXT NOT NULL,
    last_used REAL NOT NULL,
    PRIMARY KEY (charge_point, key)
) WITHOUT ROWID;
"""

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
    action: str
    payload: dict[str, Any]
    attempts: int


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
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._cache_size = cache_size
        mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            raise OSError(f"{path}: SQLite could not switch to WAL mode (got {mode!r})")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
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
    ) -> None:
        """Apply entries of the replicated `stream` (position, operation on this store) and
        record the last position, all in one durable commit."""
        if not entries:
            return
        with self._transaction() as db:
            for _, operation in entries:
                operation(self)
            db.execute(
                "INSERT OR REPLACE INTO replica_position (stream, seq) VALUES (?, ?)",
                (stream, entries[-1][0]),
            )

    def receipt(self, charge_point: str, message_id: str) -> Receipt | None:
        """The receipt of a queued message, None once it left the queue."""
        row = self._db.execute(
            "SELECT seq, local_transaction_id FROM messages WHERE charge_point = ? AND message_id = ?",
            (charge_point, message_id),
        ).fetchone()
        return None if row is None else Receipt(*row)

    # -- queues ---------------------------------------------------------------

    def enqueue_many(self, items: Sequence[Outgoing], now: float | None = None) -> list[Receipt]:
        """Store messages in one durable commit (one fsync), in the given order.

        Idempotent per (charge point, message id) while the message is queued: a
        charger repeating an unanswered Call gets the first receipt back (and the
        same local transaction id).
        """
        stamp = time.time() if now is None else now
        receipts = []
        with self._transaction() as db:
            for item in items:
                again = db.execute(
                    "SELECT seq, local_transaction_id FROM messages"
                    " WHERE charge_point = ? AND message_id = ?",
                    (item.charge_point, item.message_id),
                ).fetchone()
                if again is not None:  # the charger repeated a Call it got no answer to
                    receipts.append(Receipt(*again))
                    continue
                local_id = None
                if item.issue_transaction_id:
                    local_id = self._issue_transaction_id(item.charge_point)
                if item.coalesce_key is not None:
                    db.execute(
                        "DELETE FROM messages WHERE charge_point = ? AND coalesce_key = ?",
                        (item.charge_point, item.coalesce_key),
                    )
                cursor = db.execute(
                    "INSERT INTO messages (charge_point, message_id, action, payload,"
                    " coalesce_key, local_transaction_id, enqueued_at) VALUES (?,?,?,?,?,?,?)",
                    (
                        item.charge_point,
                        item.message_id,
                        item.action,
                        json.dumps(item.payload, separators=(",", ":")),
                        item.coalesce_key,
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
        """The next messages to send to the CSMS for one charge point, oldest first."""
        rows = self._db.execute(
            "SELECT seq, message_id, action, payload, attempts FROM messages"
            " WHERE charge_point = ? ORDER BY seq LIMIT ?",
            (charge_point, limit),
        ).fetchall()
        return [
            QueuedMessage(
                seq,
                charge_point,
                message_id,
                action,
                self._rewrite_transaction_id(charge_point, json.loads(payload)),
                attempts,
            )
            for seq, message_id, action, payload, attempts in rows
        ]

    def _rewrite_transaction_id(self, charge_point: str, payload: dict[str, Any]) -> dict[str, Any]:
        local_id = payload.get("transactionId")
        if isinstance(local_id, int) and local_id < 0:
            csms_id = self.csms_transaction_id(charge_point, local_id)
            if csms_id is not None:
                payload["transactionId"] = csms_id
        return payload

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

    def acknowledge(self, seq: int, answer: dict[str, Any]) -> None:
        """The CSMS answered message `seq` with CallResult `answer`: remove it.

        Committed without fsync: it survives a kill of the process; a power cut
        right after may undo it, and then the message is sent once more with
        its original message id (at least once, never lost). Replay is thus
        not bound by the disk's fsync latency. A message already gone (a newer
        one of its coalesce key replaced it while it was sent) is left alone.
        """
        with self._transaction(fsync=False) as db:
            row = db.execute(
                "SELECT charge_point, local_transaction_id FROM messages WHERE seq = ?", (seq,)
            ).fetchone()
            if row is None:
                return
            charge_point, local_id = row
            if local_id is not None and isinstance(answer.get("transactionId"), int):
                db.execute(
                    "UPDATE transaction_ids SET csms_id = ? WHERE charge_point = ? AND local_id = ?",
                    (answer["transactionId"], charge_point, local_id),
                )
            db.execute("DELETE FROM messages WHERE seq = ?", (seq,))

    def record_failure(self, seq: int, error: str, max_attempts: int) -> bool:
        """The CSMS answered `seq` with a CallError; True if it was moved to dead_letters
        (or is gone already: replaced by a newer one of its coalesce key)."""
        with self._transaction() as db:
            db.execute("UPDATE messages SET attempts = attempts + 1 WHERE seq = ?", (seq,))
            row = db.execute("SELECT attempts FROM messages WHERE seq = ?", (seq,)).fetchone()
            if row is None:
                return True
            if row[0] < max_attempts:
                return False
            db.execute(
                "INSERT INTO dead_letters (seq, charge_point, message_id, action, payload,"
                " enqueued_at, error) SELECT seq, charge_point, message_id, action, payload,"
                " enqueued_at, ? FROM messages WHERE seq = ?",
                (error, seq),
            )
            db.execute("DELETE FROM messages WHERE seq = ?", (seq,))
            return True

    def pending_count(self, charge_point: str | None = None) -> int:
        """How many messages wait for the CSMS (for one charge point or all)."""
        if charge_point is None:
            row = self._db.execute("SELECT COUNT(*) FROM messages").fetchone()
        else:
            row = self._db.execute(
                "SELECT COUNT(*) FROM messages WHERE charge_point = ?", (charge_point,)
            ).fetchone()
        return int(row[0])

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
