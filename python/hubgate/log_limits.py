"""Log lines that hostile input cannot inflate: cut to a length, and at most one per key
(a peer, a listener) per interval, with a count of what was held back.

    quiet = RateLimitedLog(LOG, interval_s=10.0)
    quiet.warning(peer, "%s: rejected %s", peer, clip(payload))
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import trio

CLIP_CHARS = 120
"""What a log line shows of text that came from a peer."""


def clip(value: object, limit: int = CLIP_CHARS) -> str:
    """`repr` of `value` cut to `limit` characters, saying how long it was."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} chars)"


@dataclass
class _Window:
    started: float
    held: int = 0


class RateLimitedLog:
    """At most one line per key per `interval_s`; the next line says how many were held."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        interval_s: float = 10.0,
        max_keys: int = 1024,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self.max_keys = max_keys
        self.clock = clock
        self.prefix = ""
        self._windows: OrderedDict[str, _Window] = OrderedDict()

    def scoped(self, prefix: str) -> RateLimitedLog:
        """The same log and windows, every key under `prefix` (a peer's own keys that outlive
        its connection)."""
        scoped = RateLimitedLog(
            self.logger, interval_s=self.interval_s, max_keys=self.max_keys, clock=self.clock
        )
        scoped.prefix = f"{self.prefix}{prefix}\0"
        scoped._windows = self._windows
        return scoped

    def log(
        self, level: int, key: str, message: str, *args: object, exc_info: bool = False
    ) -> bool:
        """Log unless `key` logged within the interval; True when the line went out."""
        if not self.logger.isEnabledFor(level):
            return False
        key = self.prefix + key
        now = self.clock()
        window = self._windows.get(key)
        if window is not None and now - window.started < self.interval_s:
            window.held += 1
            return False
        held = 0 if window is None else window.held
        self._windows[key] = _Window(now)
        self._windows.move_to_end(key)
        while len(self._windows) > self.max_keys:
            self._windows.popitem(last=False)
        if held:
            message += f" ({held} more since, not logged)"
        self.logger.log(level, message, *args, exc_info=exc_info)
        return True

    def info(self, key: str, message: str, *args: object) -> bool:
        """`log` at INFO."""
        return self.log(logging.INFO, key, message, *args)

    def warning(self, key: str, message: str, *args: object) -> bool:
        """`log` at WARNING."""
        return self.log(logging.WARNING, key, message, *args)

    def exception(self, key: str, message: str, *args: object) -> bool:
        """`log` at ERROR with the exception being handled."""
        return self.log(logging.ERROR, key, message, *args, exc_info=True)
