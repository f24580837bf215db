"""Cycle timing and concurrent reads with per-device deadlines.

`run_cycles` keeps a fixed cadence (cycle n starts at start + n * period, not
"period after the previous one finished"), so jitter does not accumulate; a
cycle that overruns skips the ticks it missed and is counted. A cycle may be
called early (a gateway that has just taken the lead), the cadence counted on
from it.
`gather_by_deadline` runs many device operations at once and gives each the
same absolute deadline: one slow or dead device delays nobody beyond it.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import trio

from hubgate.control.failsafe import AssumeDraw
from hubgate.devices.sensing import FULL_EVERY


@dataclass(frozen=True)
class LoopTiming:
    """Deadlines within a cycle, as shares of the cycle period, and failsafe timings."""

    read_share: float = 0.4
    command_share: float = 0.4
    unreachable_after_cycles: float = 3.0
    recover_after_s: float | None = None
    """A lost meter is trusted again after being fresh this long (default: twice `meter_stale_s`)."""
    assume: AssumeDraw = AssumeDraw.LAST_COMMAND
    """An unreachable charger's assumed draw: a verified one holds its last command or
    falls to its failsafe current, so reserving its maximum would pause others for nothing."""
    full_read_every: int = FULL_EVERY
    """Modbus devices read their non-control fields every this many cycles (`CycleReader`)."""


T = TypeVar("T")


@dataclass
class CycleStats:
    """How the cycles have run so far."""

    cycles: int = 0
    overruns: int = 0
    skipped_ticks: int = 0
    last_duration_s: float = 0.0
    durations_s: list[float] = field(default_factory=list)
    keep: int = 1_000

    def record(self, duration_s: float) -> None:
        """A cycle finished after `duration_s`."""
        self.cycles += 1
        self.last_duration_s = duration_s
        self.durations_s.append(duration_s)
        if len(self.durations_s) > self.keep:
            del self.durations_s[: len(self.durations_s) - self.keep]


async def run_cycles(
    period_s: float,
    step: Callable[[int, float], Awaitable[None]],
    *,
    stats: CycleStats | None = None,
    early: Callable[[], Awaitable[None]] | None = None,
    task_status: trio.TaskStatus[CycleStats] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Call `step(cycle_number, tick_time)` every `period_s` seconds until cancelled; also
    as soon as `early()` returns while it waits for a tick, the ticks then counted from
    there."""
    if not period_s > 0:
        raise ValueError(f"period_s must be above 0, got {period_s}")
    stats = stats or CycleStats()
    start = trio.current_time()
    task_status.started(stats)
    tick = 0
    while True:
        tick_time = start + tick * period_s
        if early is None:
            await trio.sleep_until(tick_time)
        else:
            with trio.move_on_at(tick_time) as waiting:
                await early()
            if not waiting.cancelled_caught:
                start, tick = trio.current_time(), 0
                tick_time = start
        began = trio.current_time()
        await step(stats.cycles, tick_time)
        finished = trio.current_time()
        stats.record(finished - began)
        next_tick = math.floor((finished - start) / period_s) + 1
        if next_tick > tick + 1:
            stats.overruns += 1
            stats.skipped_ticks += next_tick - tick - 1
        tick = next_tick


@dataclass(frozen=True)
class TimedOut:
    """The operation did not finish before the deadline."""


@dataclass(frozen=True)
class Failed:
    """The operation raised."""

    error: Exception


TIMED_OUT = TimedOut()


@dataclass(frozen=True)
class InFlight:
    """The read goes on past the deadline and counts in a later cycle when it ends: not
    an answer yet, and not a miss either."""


IN_FLIGHT = InFlight()


async def gather_by_deadline(
    operations: Mapping[str, Callable[[], Awaitable[T]]], deadline: float
) -> dict[str, T | TimedOut | Failed]:
    """Run every operation concurrently; each is cancelled at the absolute `deadline`."""
    results: dict[str, T | TimedOut | Failed] = dict.fromkeys(operations, TIMED_OUT)

    async def one(name: str, operation: Callable[[], Awaitable[T]]) -> None:
        try:
            results[name] = await operation()
        except Exception as exc:  # one device's failure is its own outcome
            results[name] = Failed(exc)

    with trio.move_on_at(deadline):  # one cancel scope for all: they share the deadline
        async with trio.open_nursery() as nursery:
            for name, operation in operations.items():
                nursery.start_soon(one, name, operation)
    return results
