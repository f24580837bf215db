"""Changes in the limit book as operator events: size and source, no event for a renewal."""

from __future__ import annotations

from hubgate.control.limit_events import limit_event
from hubgate.control.limits import SITE, AuditEntry, Limit, LimitBook, LimitSource
from hubgate.state import EventCategory, EventLevel


def changes(book: LimitBook) -> list[tuple[AuditEntry, Limit | None]]:
    seen: list[tuple[AuditEntry, Limit | None]] = []
    book.listeners.append(lambda entry, previous: seen.append((entry, previous)))
    return seen


def test_a_grid_operator_step_is_a_warning_with_its_size_and_its_lift_information() -> None:
    book = LimitBook()
    seen = changes(book)
    operator = LimitSource.GRID_OPERATOR
    book.set(SITE, operator, Limit(power_kw=1000), now=0, lease_s=None, origin="box")
    book.set(SITE, operator, Limit(power_kw=300), now=60, lease_s=None, origin="box")
    book.set(SITE, operator, Limit(power_kw=300), now=61, lease_s=None, origin="box")
    book.set(SITE, operator, Limit(power_kw=1000), now=660, lease_s=None, origin="box")
    events = [limit_event(entry, previous) for entry, previous in seen]
    assert events[2] is None  # the same limit again: no event
    step, lift = events[1], events[3]
    assert step is not None
    assert lift is not None
    assert (step.level, step.category, step.subject) == (
        EventLevel.WARNING,
        EventCategory.GRID_OPERATOR,
        "site",
    )
    assert step.message == "grid-operator limit 300 kW (was 1000 kW, -700 kW), from box"
    assert lift.level is EventLevel.INFO
    assert lift.message == "grid-operator limit 1000 kW (was 300 kW, +700 kW), from box"


def test_leases_set_cleared_and_lapsed() -> None:
    book = LimitBook()
    seen = changes(book)
    api = LimitSource.API
    book.set("board", api, Limit((50, 55, 60)), now=0, lease_s=120, origin="api 10.0.0.9")
    book.set("board", api, Limit((40, 40, 40)), now=10, lease_s=120, origin="api 10.0.0.9")
    book.clear("board", api, now=20, origin="api 10.0.0.9")
    book.set("cp-1#1", LimitSource.CSMS, Limit(power_kw=7.4), now=30, lease_s=60, origin="csms")
    book.expire(100)
    messages = [e.message for e in (limit_event(*change) for change in seen) if e is not None]
    assert messages == [
        "api limit 50 / 55 / 60 A for 120 s (was none), from api 10.0.0.9",
        "api limit 40 A for 120 s (was 50 / 55 / 60 A, -10 A), from api 10.0.0.9",
        "api limit 40 A cleared by api 10.0.0.9",
        "csms limit 7.4 kW for 60 s (was none), from csms",
        "csms limit 7.4 kW lapsed (set by csms)",
    ]
    assert all(limit_event(*change).category is EventCategory.LIMIT for change in seen)  # type: ignore[union-attr]
