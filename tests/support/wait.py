"""Waiting for something that happens on its own (a gateway cycling, a peer in another
thread or process): poll a predicate, bounded, and fail naming what never came.

    await wait_until(lambda: loop.stats.cycles > 3, "three cycles")       # in Trio
    await wait_cycles(told, "the command on the wire", loop.stats, 20)  # within 20 cycles
    wait_until_blocking(lambda: csms.received("CP", "Boot"), "the boot")   # in a plain test

`wait_cycles` bounds the wait by the gateway's own progress, not the wall clock: something
the gateway does within so many control cycles may take many times as long on a loaded
machine, where its cycles run late or are skipped (the test's `trio.fail_after` still ends
a gateway that stopped cycling).

A predicate may also be a coroutine function (`async def`) under Trio. The result is the
predicate's last (truthy) value.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import trio

from hubgate.control.cycle import CycleStats

T = TypeVar("T")

EVERY_S = 0.05
"""How often the predicate is asked."""


async def wait_until(
    predicate: Callable[[], T | Awaitable[T]], what: str, timeout_s: float = 10.0
) -> T:
    """Ask `predicate` every `EVERY_S` (Trio's clock) until it is truthy; fail with
    `what` after `timeout_s`."""
    with trio.move_on_after(timeout_s):
        while True:
            if value := await _ask(predicate):
                return value
            await trio.sleep(EVERY_S)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")


def wait_until_blocking(predicate: Callable[[], T], what: str, timeout_s: float = 10.0) -> T:
    """`wait_until` outside Trio (the wall clock, blocking the calling thread)."""
    deadline = time.monotonic() + timeout_s
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(EVERY_S)
    return value


async def wait_cycles(
    predicate: Callable[[], T | Awaitable[T]], what: str, stats: CycleStats, cycles: int
) -> T:
    """`wait_until`, failing once the control loop whose `stats` these are has run `cycles`
    more cycles with `predicate` still false."""
    start = stats.cycles
    while stats.cycles - start <= cycles:
        if value := await _ask(predicate):
            return value
        await trio.sleep(EVERY_S)
    raise AssertionError(f"{what} did not come within {cycles} control cycles")


async def _ask(predicate: Callable[[], T | Awaitable[T]]) -> T:
    value = predicate()
    if inspect.isawaitable(value):
        return await value
    return value
