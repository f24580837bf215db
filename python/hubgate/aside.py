"""An operation run as a task of a longer-lived nursery, its caller waiting for it: a caller
cut short (a command deadline) leaves it to finish and record its outcome, instead of
cancelling it; and operations taken in turns (`Turns`: at most one waits). A leaf: the
control loop's failsafe configurations and an OCPP station's exchanges use it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Generic, TypeVar

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


class Turns(Generic[T]):
    """Operations of one kind run one at a time, in turn: while one waits for the one under
    way to end, a later one is not queued behind it but shares the waiting one's outcome.
    The waiting one reads what to do when its turn comes (the newest asked by then), so at
    most one runs and one waits however often it is asked: a slow peer does not pile up a
    task per request, each with a request older than the last."""

    def __init__(self) -> None:
        self._turn = trio.Lock()
        self._waiting: _Shared[T] | None = None

    @property
    def waiting(self) -> bool:
        """Whether one waits for its turn already: `take` now would share its outcome."""
        return self._waiting is not None

    async def take(
        self,
        op: Callable[[], Awaitable[T]],
        run: Callable[[Callable[[], Awaitable[T]]], Awaitable[T]],
    ) -> tuple[T, ...]:
        """`(result,)` of `op` run by `run` (e.g. aside) in its turn; or, while one waits for
        its turn already, that one's: `()` when it was cancelled before it ended. The
        exception it raised is raised here."""
        if (waiting := self._waiting) is not None:
            return await waiting.outcome()
        waiting = self._waiting = _Shared()
        return (await run(partial(self._in_turn, waiting, op)),)

    async def _in_turn(self, waiting: _Shared[T], op: Callable[[], Awaitable[T]]) -> T:
        try:
            async with self._turn:
                self._waiting = None  # from here a later one waits for the next turn
                result = await op()
        except BaseException as error:
            waiting.fail(error)
            raise
        finally:
            if self._waiting is waiting:  # (cut short before its turn)
                self._waiting = None
        waiting.done(result)
        return result


class _Shared(Generic[T]):
    """One operation's outcome, for every caller that shares it."""

    def __init__(self) -> None:
        self._ended = trio.Event()
        self._result: tuple[T, ...] = ()
        self._error: BaseException | None = None

    def done(self, result: T) -> None:
        self._result = (result,)
        self._ended.set()

    def fail(self, error: BaseException) -> None:
        self._error = error
        self._ended.set()

    async def outcome(self) -> tuple[T, ...]:
        """`(result,)`, or `()` when it was cancelled; its exception raised here."""
        await self._ended.wait()
        if isinstance(self._error, Exception):
            raise self._error
        return self._result
