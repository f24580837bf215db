"""The durable store's SQLite file: its tables, and opening it (WAL, fsync on commit,
an older layout migrated in place). `hubgate.cloud.store` has what is kept in them and why."""

from __future__ import annotations

import sqlite3
from pathlib import Path

SCHEMA_VERSION = 1
"""`PRAGMA user_version` of the current layout; 0 is the first one (`_migrate` upgrades it)."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    charge_point TEXT NOT NULL,
    message_id TEXT NOT NULL,
    action TEXT NOT NULL,
    payload TEXT NOT NULL,
    coalesce_key TEXT,
    local_transaction_id INTEGER,
    enqueued_at REAL NOT NULL,
    upstream_id TEXT NOT NULL DEFAULT '',
    connection TEXT NOT NULL DEFAULT '',
    payload_hash TEXT NOT NULL DEFAULT '',
    transaction_key TEXT
);
CREATE INDEX IF NOT EXISTS messages_by_charge_point ON messages (charge_point, seq);
CREATE INDEX IF NOT EXISTS messages_by_charger_id ON messages (charge_point, message_id);
CREATE UNIQUE INDEX IF NOT EXISTS messages_by_upstream_id ON messages (charge_point, upstream_id);
CREATE INDEX IF NOT EXISTS messages_by_transaction ON messages (charge_point, transaction_key);
CREATE UNIQUE INDEX IF NOT EXISTS messages_latest
    ON messages (charge_point, coalesce_key) WHERE coalesce_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS held (
    charge_point TEXT NOT NULL,
    transaction_key TEXT NOT NULL,
    reason TEXT NOT NULL,
    csms_transaction_id INTEGER,
    since REAL NOT NULL,
    PRIMARY KEY (charge_point, transaction_key)
) WITHOUT ROWID;
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


def open_database(path: str | Path) -> sqlite3.Connection:
    """The store's file at `path` (created when missing) in the current layout, in WAL mode
    with `synchronous=FULL`; autocommit (the store begins its own transactions)."""
    db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if mode != "wal":
        db.close()
        raise OSError(f"{path}: SQLite could not switch to WAL mode (got {mode!r})")
    db.execute("PRAGMA synchronous=FULL")
    _migrate(db)
    db.executescript(SCHEMA)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    return db


def _migrate(db: sqlite3.Connection) -> None:
    """Bring a file of the first layout (user_version 0) to the current one."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(messages)")}
    if not columns or "upstream_id" in columns:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        for column in ("upstream_id", "connection", "payload_hash"):
            db.execute(f"ALTER TABLE messages ADD COLUMN {column} TEXT NOT NULL DEFAULT ''")
        db.execute("ALTER TABLE messages ADD COLUMN transaction_key TEXT")
        db.execute(
            "UPDATE messages SET upstream_id = message_id, connection = 'first layout',"
            " transaction_key = COALESCE("
            "CAST(local_transaction_id AS TEXT),"
            " CAST(json_extract(payload, '$.transactionId') AS TEXT),"
            " json_extract(payload, '$.transactionInfo.transactionId'))"
        )
        db.execute("DROP INDEX IF EXISTS messages_by_message_id")  # it was unique
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
