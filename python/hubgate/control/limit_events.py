"""Changes in the limit book as operator events: which limit, from which source, how big.

A lease renewed with the same limit is no event (an API client or a Modbus-server PLC
renews every few minutes); a grid-operator limit lower than the one before is a warning,
every other change information.
"""

from __future__ import annotations

from dataclasses import dataclass

from hubgate.control.limits import SITE, AuditAction, AuditEntry, Limit, LimitSource
from hubgate.state import EventCategory, EventLevel


@dataclass(frozen=True)
class LimitEvent:
    """What to report of one change."""

    level: EventLevel
    category: EventCategory
    subject: str
    message: str


def limit_text(limit: Limit | None) -> str:
    """`50 / 55 / 60 A, 40 kW`, `300 kW`, `none`."""
    if limit is None or (limit.phase_a is None and limit.power_kw is None):
        return "none"
    parts = []
    if limit.phase_a is not None:
        a = limit.phase_a
        same = a[0] == a[1] == a[2]
        parts.append(f"{a[0]:g} A" if same else f"{a[0]:g} / {a[1]:g} / {a[2]:g} A")
    if limit.power_kw is not None:
        parts.append(f"{limit.power_kw:g} kW")
    return ", ".join(parts)


def _change(new: Limit, old: Limit | None) -> str:
    """The size of the change where both limit the same quantity: `, -700 kW`."""
    if old is None:
        return ""
    if new.power_kw is not None and old.power_kw is not None:
        return f", {new.power_kw - old.power_kw:+g} kW"
    if new.phase_a is not None and old.phase_a is not None:
        return f", {min(new.phase_a) - min(old.phase_a):+g} A"
    return ""


def _tighter(new: Limit, old: Limit | None) -> bool:
    """Whether `new` lowers a limit `old` had (a first limit lowers nothing)."""
    if old is None:
        return False
    if new.power_kw is not None and (old.power_kw is None or new.power_kw < old.power_kw):
        return True
    return new.phase_a is not None and (
        old.phase_a is None or any(n < o for n, o in zip(new.phase_a, old.phase_a, strict=True))
    )


def limit_event(entry: AuditEntry, previous: Limit | None) -> LimitEvent | None:
    """The event for an audit entry, None for a renewal that changed nothing."""
    operator = entry.source is LimitSource.GRID_OPERATOR
    category = EventCategory.GRID_OPERATOR if operator else EventCategory.LIMIT
    subject = "site" if entry.target == SITE else entry.target
    source = entry.source.value
    level = EventLevel.INFO
    if entry.action is AuditAction.SET:
        if previous == entry.limit:
            return None
        lasts = "" if entry.expires_at is None else f" for {entry.expires_at - entry.at:g} s"
        message = (
            f"{source} limit {limit_text(entry.limit)}{lasts} (was {limit_text(previous)}"
            f"{_change(entry.limit, previous)}), from {entry.origin}"
        )
        if operator and _tighter(entry.limit, previous):
            level = EventLevel.WARNING
    elif entry.action is AuditAction.CLEARED:
        message = f"{source} limit {limit_text(previous)} cleared by {entry.origin}"
    else:
        message = f"{source} limit {limit_text(previous)} lapsed (set by {entry.origin})"
    return LimitEvent(level, category, subject, message)
