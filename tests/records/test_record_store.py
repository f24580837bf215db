"""The event log's SQLite file: it survives a restart, filters, and its retention never
evicts a warning for an info event."""

from __future__ import annotations

from pathlib import Path

from hubgate.records.store import EventQuery, RecordStore, Retention
from hubgate.state import Event, EventCategory, EventLevel

T0 = 1_700_000_000.0


def event(at: float, severity: EventLevel, subject: str = "cp-1#1", **kw: object) -> Event:
    fields: dict[str, object] = {
        "at": at,
        "severity": severity,
        "category": EventCategory.DEVICE,
        "subject": subject,
        "message": "unreachable (no answer)",
    } | kw
    return Event.model_validate(fields)


def test_events_survive_a_restart_in_order_with_their_members(tmp_path: Path) -> None:
    path = tmp_path / "records" / "hubgate-records.sqlite3"
    store = RecordStore(path)
    first = store.add_event(event(T0, EventLevel.WARNING), T0)
    merged = event(
        T0 + 1,
        EventLevel.WARNING,
        "feeder-3",
        until=T0 + 4,
        members=("cp-1#1", "cp-2#1"),
        message="2 devices unreachable on feeder-3",
    )
    second = store.add_event(merged, T0 + 5)
    assert (first.id, second.id) == (1, 2)
    store.close()

    reopened = RecordStore(path)
    assert reopened.events(EventQuery()) == [first, second]
    third = reopened.add_event(event(T0 + 6, EventLevel.INFO), T0 + 6)
    assert third.id == 3  # ids keep growing: a live stream resumes where it was
    reopened.close()


def test_queries_filter_by_time_severity_category_and_id() -> None:
    store = RecordStore()
    store.add_event(event(T0, EventLevel.INFO), T0)
    store.add_event(event(T0 + 10, EventLevel.WARNING, category=EventCategory.METER), T0)
    store.add_event(event(T0 + 20, EventLevel.ALARM, category=EventCategory.CHARGER), T0)
    store.add_event(event(T0 + 30, EventLevel.INFO, category=EventCategory.LIMIT), T0)

    def ids(**query: object) -> list[int]:
        return [e.id for e in store.events(EventQuery(**query))]  # type: ignore[arg-type]

    assert ids() == [1, 2, 3, 4]
    assert ids(severity=EventLevel.WARNING) == [2, 3]  # warnings and worse
    assert ids(severity=EventLevel.ALARM) == [3]
    assert ids(since=T0 + 10) == [2, 3, 4]
    assert ids(category=EventCategory.LIMIT) == [4]
    assert ids(after_id=2) == [3, 4]
    assert ids(limit=2) == [3, 4]  # the newest, oldest first


def test_retention_removes_old_events_then_info_before_any_warning() -> None:
    store = RecordStore(retention=Retention(max_age_s=3600, max_count=5))
    store.add_event(event(T0 - 7200, EventLevel.ALARM), T0)  # too old, alarm or not
    for i in range(3):
        store.add_event(event(T0 + i, EventLevel.WARNING), T0)
    for i in range(10):
        store.add_event(event(T0 + 10 + i, EventLevel.INFO, subject=f"info-{i}"), T0)
    assert store.prune(T0 + 60) == 1 + 8
    left = store.events(EventQuery(limit=100))
    assert [e.severity for e in left].count(EventLevel.WARNING) == 3
    assert [e.subject for e in left if e.severity is EventLevel.INFO] == ["info-8", "info-9"]

    # Only when warnings alone are more than the count do the oldest of them go.
    for i in range(4):
        store.add_event(event(T0 + 100 + i, EventLevel.WARNING, subject=f"w-{i}"), T0)
    store.prune(T0 + 200)
    left = store.events(EventQuery(limit=100))
    assert len(left) == 5
    assert all(e.severity is EventLevel.WARNING for e in left)
    assert [e.subject for e in left][-4:] == ["w-0", "w-1", "w-2", "w-3"]


def test_pruning_runs_by_itself_every_hundred_events() -> None:
    store = RecordStore(retention=Retention(max_count=100))
    for i in range(250):
        store.add_event(event(T0 + i, EventLevel.INFO), T0 + i)
    assert store.count_events() <= 150
