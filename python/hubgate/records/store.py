"""The operator's records on disk: one SQLite file with the event log, the charging sessions
and what the API set that must outlive a restart (its schedules and prices, `keep`).

The file sits beside the CSMS queue (`[records] path`, `records_path`) and survives
restarts; a gateway without a file keeps them in memory. WAL mode with
`synchronous=NORMAL`: a commit reaches the kernel before the method returns (a SIGKILL
loses nothing), a power cut may lose the last second, which for a log is the right trade
against an fsync per event. The class is synchronous and used from the Trio thread only:
events are rare (bursts are merged before they are written) and session rows are written
at their start and end and refreshed in one transaction every `SessionRecorder` interval.

Retention (`prune`): events older than `max_age_s` go, then, while more than `max_count`
are left, the oldest info events, and only when warnings and alarms alone exceed it, the
oldest of those: an outage's warnings are never pushed out by routine info.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hubgate.config.model import SiteConfig
from hubgate.state import ChargingSession, Event, EventCategory, EventLevel

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    until REAL,
    severity INTEGER NOT NULL,
    category TEXT NOT NULL,
    subject TEXT NOT NULL,
    message TEXT NOT NULL,
    members TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS events_at ON events(at);
CREATE INDEX IF NOT EXISTS events_severity ON events(severity, id);
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    connector TEXT NOT NULL,
    transaction_id TEXT,
    id_token TEXT,
    started_at REAL NOT NULL,
    stopped_at REAL,
    updated_at REAL NOT NULL,
    energy_wh REAL NOT NULL DEFAULT 0,
    meter_start_wh REAL,
    peak_current_a REAL NOT NULL DEFAULT 0,
    max_setpoint_a REAL,
    min_setpoint_a REAL,
    limited TEXT NOT NULL DEFAULT '{}',
    stop_reason TEXT
);
CREATE INDEX IF NOT EXISTS sessions_started ON sessions(started_at);
CREATE INDEX IF NOT EXISTS sessions_open ON sessions(stopped_at);
CREATE TABLE IF NOT EXISTS kept (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    saved_at REAL NOT NULL
);
"""

LEVELS = (EventLevel.INFO, EventLevel.WARNING, EventLevel.ALARM)


@dataclass(frozen=True)
class Retention:
    """How long and how many events are kept."""

    max_age_s: float = 90 * 86_400.0
    max_count: int = 100_000


def retention_of(site: SiteConfig) -> Retention:
    """The site file's `[records]` retention."""
    records = site.records
    return Retention(records.event_max_age_days * 86_400.0, records.event_max_count)


@dataclass(frozen=True)
class EventQuery:
    """Which events to read: newer than `after_id`, at or after `since` (wall clock), at
    least `severity`, of `category`; the newest `limit` of them."""

    since: float | None = None
    severity: EventLevel = EventLevel.INFO
    category: EventCategory | None = None
    after_id: int = 0
    limit: int = 100


@dataclass(frozen=True)
class SessionQuery:
    """Which sessions to read: of `connector`, of `id_token`, started at or after `since`
    and before `until` (wall clock), only those still going on; the newest `limit`."""

    connector: str | None = None
    id_token: str | None = None
    since: float | None = None
    until: float | None = None
    open_only: bool = False
    limit: int = 1000


class RecordStore:
    """The SQLite file of events and sessions (see the module docstring)."""

    def __init__(self, path: str | Path | None = None, retention: Retention | None = None) -> None:
        """`path` None: in memory, gone with the process."""
        self.path = None if path is None else Path(path)
        self.retention = retention or Retention()
        target = ":memory:" if self.path is None else str(self.path)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        self._since_prune = 0

    def close(self) -> None:
        """Close the file."""
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One commit for everything done inside."""
        self.db.execute("BEGIN")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- what the API set ------------------------------------------------------------

    def keep(self, name: str, value: object, now_wall: float) -> None:
        """Keep `value` (JSON) under `name` across restarts, replacing what was there."""
        self.db.execute(
            "INSERT INTO kept (name, value, saved_at) VALUES (?, ?, ?) ON CONFLICT(name) "
            "DO UPDATE SET value = excluded.value, saved_at = excluded.saved_at",
            (name, json.dumps(value), now_wall),
        )

    def kept(self, name: str) -> object:
        """What was kept under `name` (None for nothing)."""
        row = self.db.execute("SELECT value FROM kept WHERE name = ?", (name,)).fetchone()
        return None if row is None else json.loads(row[0])

    # -- events ------------------------------------------------------------------------

    def add_event(self, event: Event, now_wall: float) -> Event:
        """Store `event`; it comes back with its id. Prunes every 100 events."""
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT INTO events (at, until, severity, category, subject, message, members)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    event.at,
                    event.until,
                    event.severity.rank,
                    event.category.value,
                    event.subject,
                    event.message,
                    json.dumps(event.members),
                ),
            )
        self._since_prune += 1
        if self._since_prune >= 100:
            self.prune(now_wall)
        return event.model_copy(update={"id": cursor.lastrowid})

    def prune(self, now_wall: float) -> int:
        """Apply the retention rules; how many events went."""
        self._since_prune = 0
        keep = self.retention
        with self.transaction() as db:
            gone = db.execute("DELETE FROM events WHERE at < ?", (now_wall - keep.max_age_s,))
            removed = gone.rowcount
            (count,) = db.execute("SELECT COUNT(*) FROM events").fetchone()
            excess = count - keep.max_count
            for severity_below in (1, len(LEVELS)):  # info first, the rest only if need be
                if excess <= 0:
                    break
                gone = db.execute(
                    "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE severity < ?"
                    " ORDER BY id LIMIT ?)",
                    (severity_below, excess),
                )
                excess -= gone.rowcount
                removed += gone.rowcount
        return removed

    def events(self, query: EventQuery) -> list[Event]:
        """The newest `query.limit` events that match, oldest first."""
        where = ["id > ?", "severity >= ?"]
        params: list[object] = [query.after_id, query.severity.rank]
        if query.since is not None:
            where.append("at >= ?")
            params.append(query.since)
        if query.category is not None:
            where.append("category = ?")
            params.append(query.category.value)
        rows = self.db.execute(
            "SELECT id, at, until, severity, category, subject, message, members FROM events"
            f" WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
            (*params, query.limit),
        ).fetchall()
        return [_event(row) for row in reversed(rows)]

    def count_events(self) -> int:
        """How many events are stored."""
        (count,) = self.db.execute("SELECT COUNT(*) FROM events").fetchone()
        return int(count)

    # -- sessions ----------------------------------------------------------------------

    def save_sessions(self, sessions: Iterable[ChargingSession], now_wall: float) -> list[int]:
        """Insert the new sessions (id 0) and update the others, in one commit; their ids."""
        ids = []
        with self.transaction() as db:
            for session in sessions:
                row = (
                    session.connector,
                    session.transaction_id,
                    session.id_token,
                    session.started_at,
                    session.stopped_at,
                    now_wall,
                    session.energy_kwh * 1000,
                    session.peak_current_a,
                    session.max_setpoint_a,
                    session.min_setpoint_a,
                    json.dumps(session.limited_s),
                    session.stop_reason,
                )
                if session.id == 0:
                    cursor = db.execute(
                        "INSERT INTO sessions (connector, transaction_id, id_token, started_at,"
                        " stopped_at, updated_at, energy_wh, peak_current_a, max_setpoint_a,"
                        " min_setpoint_a, limited, stop_reason)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        row,
                    )
                    ids.append(int(cursor.lastrowid or 0))
                else:
                    db.execute(
                        "UPDATE sessions SET connector = ?, transaction_id = ?, id_token = ?,"
                        " started_at = ?, stopped_at = ?, updated_at = ?, energy_wh = ?,"
                        " peak_current_a = ?, max_setpoint_a = ?, min_setpoint_a = ?,"
                        " limited = ?, stop_reason = ? WHERE id = ?",
                        (*row, session.id),
                    )
                    ids.append(session.id)
        return ids

    def close_open_sessions(self, now_wall: float, reason: str) -> int:
        """End every session still open (at start-up: they were open when hubgate stopped;
        each ends at its last update)."""
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE sessions SET stopped_at = updated_at, stop_reason = ?"
                " WHERE stopped_at IS NULL",
                (reason,),
            )
        return cursor.rowcount

    def sessions(self, query: SessionQuery) -> list[ChargingSession]:
        """The newest `query.limit` sessions that match, oldest first."""
        where, params = ["1"], list[object]()
        for clause, value in (
            ("connector = ?", query.connector),
            ("id_token = ?", query.id_token),
            ("started_at >= ?", query.since),
            ("started_at < ?", query.until),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        if query.open_only:
            where.append("stopped_at IS NULL")
        rows = self.db.execute(
            "SELECT id, connector, transaction_id, id_token, started_at, stopped_at, energy_wh,"
            " peak_current_a, max_setpoint_a, min_setpoint_a, limited, stop_reason"
            f" FROM sessions WHERE {' AND '.join(where)} ORDER BY started_at DESC, id DESC"
            " LIMIT ?",
            (*params, query.limit),
        ).fetchall()
        return [_session(row) for row in reversed(rows)]


_SessionRow = tuple[
    int,
    str,
    str | None,
    str | None,
    float,
    float | None,
    float,
    float,
    float | None,
    float | None,
    str,
    str | None,
]


def _session(row: _SessionRow) -> ChargingSession:
    (id_, connector, tx, token, started, stopped, energy_wh, peak, top, low, limited, why) = row
    return ChargingSession.model_construct(
        id=id_,
        connector=connector,
        transaction_id=tx,
        id_token=token,
        started_at=started,
        stopped_at=stopped,
        energy_kwh=energy_wh / 1000,
        peak_current_a=peak,
        max_setpoint_a=top,
        min_setpoint_a=low,
        limited_s=json.loads(limited),
        stop_reason=why,
    )


_EventRow = tuple[int, float, float | None, int, str, str, str, str]


def _event(row: _EventRow) -> Event:
    id_, at, until, severity, category, subject, message, members = row
    return Event.model_construct(
        id=id_,
        at=at,
        until=until,
        severity=LEVELS[severity],
        category=EventCategory(category),
        subject=subject,
        message=message,
        members=tuple(json.loads(members)),
    )
