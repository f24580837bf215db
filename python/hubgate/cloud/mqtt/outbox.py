"""The bounded buffer of telemetry waiting for the broker.

At most `capacity` messages wait. When a new one arrives at a full buffer, the
oldest *measurement* is dropped (a newer reading supersedes it) and counted in
`dropped_measurements`. Events are dropped only when the buffer holds nothing
but events: then the oldest event goes, counted in `dropped_events`. Order is
kept: messages leave in the order they came.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """What a telemetry message is, for the drop policy."""

    MEASUREMENT = "measurement"
    EVENT = "event"


@dataclass(frozen=True, slots=True)
class Message:
    """One telemetry message ready to publish."""

    topic: str
    payload: bytes
    kind: Kind
    retain: bool = False


class Outbox:
    """A bounded FIFO with the drop policy above."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"the buffer must hold at least one message, got {capacity}")
        self.capacity = capacity
        self._messages: deque[Message] = deque()
        self._measurements = 0
        self.dropped_measurements = 0
        self.dropped_events = 0

    def __len__(self) -> int:
        return len(self._messages)

    def put(self, message: Message) -> None:
        """Add a message, dropping by the policy if the buffer is full."""
        if len(self._messages) >= self.capacity:
            self._drop_one()
        self._messages.append(message)
        self._measurements += message.kind is Kind.MEASUREMENT

    def _drop_one(self) -> None:
        if self._measurements:
            for i, old in enumerate(self._messages):
                if old.kind is Kind.MEASUREMENT:
                    del self._messages[i]
                    self._measurements -= 1
                    self.dropped_measurements += 1
                    return
        self._messages.popleft()
        self.dropped_events += 1

    def peek(self) -> Message | None:
        """The oldest message, left in place."""
        return self._messages[0] if self._messages else None

    def pop(self) -> Message:
        """Remove and return the oldest message."""
        message = self._messages.popleft()
        self._measurements -= message.kind is Kind.MEASUREMENT
        return message
