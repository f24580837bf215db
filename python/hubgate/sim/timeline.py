"""Timed events as a sorted list of changes: each event starts, and ends after its duration."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hubgate.sim.scenario import Event


@dataclass(frozen=True)
class Change:
    """An event starting (`starting`) or ending at `at_s`."""

    at_s: float
    event: Event
    starting: bool


class Timeline:
    """Hands out the changes that are due, in time order (ends before starts at a tie)."""

    def __init__(self, events: Sequence[Event]) -> None:
        changes = [Change(e.at_s, e, True) for e in events]
        changes += [
            Change(e.at_s + e.duration_s, e, False) for e in events if e.duration_s is not None
        ]
        changes.sort(key=lambda c: (c.at_s, c.starting))
        self._changes = changes
        self._next = 0

    def due(self, now: float) -> list[Change]:
        """Changes at or before `now` not handed out yet."""
        start = self._next
        while self._next < len(self._changes) and self._changes[self._next].at_s <= now:
            self._next += 1
        return self._changes[start : self._next]
