"""Waiting for an answer that is about to arrive: a brief block before Trio's wait.

    readable = Readable(sock)               # once per socket (or file descriptor)
    if not await readable.by(deadline):
        ...  # Trio's clock reached `deadline` first

A Modbus master waits for one answer at a time, and a device on the same host or a
fast LAN answers within a few milliseconds: Trio's way to wait then costs more CPU
than the rest of the request (`trio.lowlevel.wait_readable`: an `epoll_ctl`, a pass of
the scheduler, a task switch through every frame of the caller, a cancel scope for
the timeout). `Readable.by` first blocks in `poll` on this socket alone, for about
twice the time its answers took lately, and waits the Trio way only when nothing came
by then. A task that becomes runnable during a brief block (its socket, a timer, a
thread's call) waits for the block's end, as behind a task that computes for as long
(the process's threads do not wait), so a block is taken only
- within `SLICE_S` of this thread's last pass through Trio's scheduler (in a wait of
  this module): the other tasks wait at most that long in a row. At the slice's end a
  socket that answers well within a slice lets them run (a checkpoint: no
  registration, no cancel scope) and blocks briefly again; any other socket is waited
  for the Trio way;
- while its brief blocks catch their answers: a socket whose blocks mostly miss (a
  device slower than usual, or one that can answer only once this thread runs its
  other tasks: a device served by the same Trio run) is waited for the Trio way for
  its next `SKIP_AFTER_MISSES` waits, and a block that missed is followed by Trio's
  wait, not by another block;
- not while another task is runnable (`tasks_runnable`: Trio's run queue; the tasks
  of the scheduler's current pass that have not run yet are in no queue, so those may
  wait one block);
- never past `deadline` nor the first deadline of the run (`next_timer`: any task's
  sleep or cancel scope, the enclosing ones too, ends on time), nor once cancelled.
Each block waits at least `BLOCK_FLOOR_S` when the window allows (a shorter `poll`
costs the kernel a timer of its own). The brief block is a plain `poll` (or
`PlanExchange.run_on`'s); the run queue's length, the first deadline and cancellation are read from
Trio's runner, with the public statistics as fallback.
"""

from __future__ import annotations

import math
import select
import threading
import time
from typing import Any

import trio


def _run_context() -> Any:
    """Trio's per-thread run state (its runner and run queue), None in a Trio without it."""
    try:
        from trio._core import _run_context
    except ImportError:  # another Trio: `tasks_runnable` uses the public statistics
        return None
    return getattr(_run_context, "GLOBAL_RUN_CONTEXT", None)


_RUN_CONTEXT = _run_context()

SLICE_S = 0.02
"""About the longest the other tasks of the run are kept waiting by brief blocks in a row."""
SKIP_AFTER_MISSES = 64
"""Waits the Trio way once more than half of a socket's recent brief blocks missed."""
BLOCK_FLOOR_S = 0.005
"""The shortest brief block: a `poll` that ends before the kernel's next tick (4 ms at
HZ 250) arms the timer hardware for its end, and on a virtual machine that is a trip to
the hypervisor (6 to 11 us of CPU per request measured on this project's VM, more than a
third of a loopback request); one of a tick or more costs nothing more when the answer
comes first. The slice and the deadlines still bound it."""
_FIRST_GUESS_S = 0.001
"""How long a new socket's answers are taken to take."""
_POLL_MS = 1000.0
"""`poll` counts whole milliseconds (rounding up)."""


def next_timer() -> float:
    """When the first deadline of this thread's Trio run falls due (any task's sleep or
    cancel scope; Trio's clock, inf: none): a brief block must not run past it. Read from
    Trio's runner (the first entry of its heap, 0.3 us); the public statistics, which
    first count every socket Trio waits on, where the runner is not as expected."""
    try:
        deadline: float = _RUN_CONTEXT.runner.deadlines.next_deadline()
    except AttributeError:
        statistics = trio.lowlevel.current_statistics()
        return trio.current_time() + statistics.seconds_to_next_deadline
    return deadline


def cancelled() -> bool:
    """Whether this task is cancelled (Trio's next wait raises `Cancelled`). Read from
    Trio's runner (an attribute of the task's cancel status); the public effective
    deadline, which walks every enclosing cancel scope (2 us at a depth of five), where
    the runner is not as expected."""
    try:
        return bool(_RUN_CONTEXT.task._cancel_status.effectively_cancelled)
    except AttributeError:
        return trio.current_effective_deadline() == -math.inf


def tasks_runnable() -> int:
    """How many tasks wait in this thread's Trio run queue. Read from Trio's runner
    (0.2 us): `trio.lowlevel.current_statistics()`, the public way, first counts every
    socket Trio waits on (4 us with one, 24 us with 300: more than a request's own
    Python), and serves where the runner is not as expected."""
    try:
        return len(_RUN_CONTEXT.runner.runq)
    except AttributeError:
        return trio.lowlevel.current_statistics().tasks_runnable


class _LastPass(threading.local):
    """When this thread's Trio run last passed through its scheduler for a wait of this
    module (`time.perf_counter`: the run's clock may be another run's or a test's)."""

    at = -float("inf")


_LAST_PASS = _LastPass()


class Readable:
    """Waits for one socket (or file descriptor) to be readable (see the module docstring)."""

    __slots__ = ("_missed", "_poll", "_skip", "_sock", "answer_s", "brief_answers", "miss_rate")

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._poll = select.poll()
        self._poll.register(sock, select.POLLIN)
        self.answer_s = _FIRST_GUESS_S
        """How long waits for this socket took lately (a moving average)."""
        self.brief_answers = 0
        """Waits that ended in a brief block, without Trio's scheduler (tests, profiles)."""
        self.miss_rate = 0.0
        """The share of recent brief blocks that ended without an answer (a moving average)."""
        self._missed = False
        """The last brief block ended without an answer: Trio's wait follows."""
        self._skip = 0
        """Waits left the Trio way before the next brief block."""

    async def by(self, deadline: float) -> bool:
        """True once the socket is readable, False once Trio's clock reached `deadline`
        first."""
        ready = self.briefly(deadline)
        if ready is None:
            return await self.in_trio(deadline)
        return ready

    def briefly(self, deadline: float) -> bool | None:
        """`by` in a brief block: None when the wait is Trio's to make (`in_trio`)."""
        within = self.window(deadline, trio.current_time())
        if not within:
            return None if within is None else False
        began = time.perf_counter()
        block = self.block_s
        if events := self._poll.poll(min(within, block) * _POLL_MS):
            if events[0][1] & select.POLLNVAL:
                return None  # closed: Trio's wait raises the error it names
            self.caught(time.perf_counter() - began)
            return True
        if deadline <= trio.current_time() and deadline < trio.current_effective_deadline():
            return False
        if within >= block:  # else cut short by the window (a timer due): not a miss
            self.miss()
        return None

    @property
    def block_s(self) -> float:
        """How long one brief block waits at most: twice `answer_s`, `BLOCK_FLOOR_S` at
        least (within the `window`)."""
        return max(2.0 * self.answer_s, BLOCK_FLOOR_S)

    def window(self, deadline: float, now: float) -> float | None:
        """How long brief blocks may wait for this socket from `now` (Trio's clock, s),
        each at most `block_s`: None when the wait is Trio's to make (`in_trio`), 0.0 when
        `deadline` passed. The caller records how they went (`caught`, `miss`)."""
        if self._skip:
            self._skip -= 1
            return None
        left = SLICE_S - (time.perf_counter() - _LAST_PASS.at)
        if 2.0 * self.answer_s > left:  # the slice would end first
            return None
        timer = next_timer()  # the enclosing cancel scopes' deadlines among them
        if timer <= now or cancelled():
            return None  # a sleep or a scope is due, or cancelled: Trio's wait
        if deadline <= now:
            return 0.0
        if tasks_runnable():
            return None  # another task's turn: Trio's wait
        return min(left, deadline - now, timer - now)

    def caught(self, seconds: float) -> None:
        """A brief block caught the answer after `seconds`."""
        self.answer_s += (seconds - self.answer_s) / 8.0
        self.miss_rate -= self.miss_rate / 8.0
        self.brief_answers += 1

    def miss(self) -> None:
        """A brief block ended without an answer (within twice `answer_s` or longer):
        Trio's wait follows."""
        self.answer_s += (self.answer_s * 2.0 - self.answer_s) / 8.0  # at least that long
        self.miss_rate += (1.0 - self.miss_rate) / 8.0
        if self.miss_rate > 0.5:
            self._skip = SKIP_AFTER_MISSES
        self._missed = True

    async def in_trio(self, deadline: float) -> bool:
        """`by` through Trio's scheduler: at the slice's end, a socket that answers
        quickly lets the other tasks run (a checkpoint, no registration, no cancel
        scope) and blocks briefly again; any other waits the Trio way."""
        missed, self._missed = self._missed, False
        if not missed and 2.0 * self.answer_s < SLICE_S:  # the slice ended
            try:
                await trio.lowlevel.checkpoint()
            finally:
                _LAST_PASS.at = time.perf_counter()
            ready = self.briefly(deadline)
            if ready is not None:
                return ready
            self._missed = False
        sock = self._sock
        began = time.perf_counter()
        ready = True
        try:
            if trio.current_effective_deadline() <= deadline:  # no scope: that one cancels first
                await trio.lowlevel.wait_readable(sock)
            else:
                ready = False
                with trio.CancelScope(deadline=deadline):
                    await trio.lowlevel.wait_readable(sock)
                    ready = True
        finally:
            _LAST_PASS.at = ended = time.perf_counter()
        self.answer_s += (ended - began - self.answer_s) / 8.0
        return ready
