"""An event log for tests that also keeps every event as it was emitted."""

from __future__ import annotations

import time
from typing import Any

from hubgate.records.events import EventLog
from hubgate.state import EventLevel


class RecordedEvents(EventLog):
    """An `EventLog` in memory whose `emitted` lists every (level, subject, message) in the
    order emitted, before bursts merge them. Its clock is `time.monotonic`: it works
    without Trio too."""

    def __init__(self) -> None:
        super().__init__(clock=time.monotonic)
        self.emitted: list[tuple[EventLevel, str, str]] = []

    def emit(self, level: EventLevel, subject: str, message: str, **options: Any) -> None:
        """Keep the event, then `EventLog.emit` it."""
        self.emitted.append((level, subject, message))
        super().emit(level, subject, message, **options)
