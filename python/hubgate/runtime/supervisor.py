"""Supervised tasks: a task that fails is reported and restarted with backoff.

The other tasks are not taken down. The backoff grows exponentially with
jitter up to a ceiling and resets once a task has run stably for a while.

    async with open_supervisor() as supervisor:
        supervisor.start("modbus-master", run_master)
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio

from hubgate.backoff import Backoff

log = logging.getLogger(__name__)

TaskFn = Callable[[], Awaitable[object]]


@dataclass
class TaskHealth:
    """What the supervisor knows about one task."""

    name: str
    running: bool = False
    restarts: int = 0
    last_error: str | None = None
    last_failure_at: float | None = None
    finished: bool = False


@dataclass
class Supervisor:
    """Starts named tasks in its nursery and restarts them when they fail."""

    nursery: trio.Nursery
    backoff: Backoff = field(default_factory=Backoff)
    rng: random.Random = field(default_factory=random.Random)
    health: dict[str, TaskHealth] = field(default_factory=dict)

    def start(self, name: str, fn: TaskFn) -> None:
        """Run `fn` as task `name`, restarted after every failure until cancelled."""
        if name in self.health:
            raise ValueError(f"a task named {name!r} is already supervised")
        self.health[name] = TaskHealth(name)
        self.nursery.start_soon(self._run, name, fn, name=name)

    async def _run(self, name: str, fn: TaskFn) -> None:
        health = self.health[name]
        attempt = 0
        while True:
            started = trio.current_time()
            health.running = True
            try:
                await fn()
            except Exception as exc:  # a supervised task's failure must not spread
                health.running = False
                health.restarts += 1
                health.last_error = f"{type(exc).__name__}: {exc}"
                health.last_failure_at = trio.current_time()
                log.exception("task %s failed; restarting", name)
                if trio.current_time() - started >= self.backoff.stable_after_s:
                    attempt = 0
                await trio.sleep(self.backoff.delay(attempt, self.rng))
                attempt += 1
            else:
                health.running = False
                health.finished = True
                return


@asynccontextmanager
async def open_supervisor(backoff: Backoff | None = None) -> AsyncIterator[Supervisor]:
    """A supervisor that owns a nursery; leaving the block waits for its tasks."""
    async with trio.open_nursery() as nursery:
        yield Supervisor(nursery, backoff or Backoff())
