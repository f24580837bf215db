"""An operation run as a task of a longer-lived nursery, its caller waiting for it: a caller
cut short (a command deadline) leaves it to finish and record its outcome, instead of
cancelling it. A leaf: the control loop's failsafe configurations and an OCPP station's
exchanges use it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import trio

T = TypeVar("T")


async def run_aside(nursery: trio.Nursery, op: Callable[[], Awaitable[T]]) -> tuple[T, ...]:
    """`(result,)` of `op` run in `nursery`, or `()` when the nursery cancelled it first;
    its exception is raised here, to the caller."""
    done = trio.Event()
    results: list[T] = []
    errors: list[Exception] = []

    async def aside() -> None:
        try:
            results.append(await op())
        except Exception as error:  # the caller's to see, not the nursery's
            errors.append(error)
        finally:
            done.set()

    nursery.start_soon(aside)
    await done.wait()
    if errors:
        raise errors[0]
    return tuple(results)
