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
  its next 64 waits, and a block that missed is followed by Trio's
  wait, not by another block;
- not while another task is runnable (Trio's run queue; the tasks
  of the scheduler's current pass that have not run yet are in no queue, so those may
  wait one block);
- never past `deadline` nor the first deadline of the run (any task's
  sleep or cancel scope, the enclosing ones too, ends on time), nor once cancelled.
Each block waits at least 5 ms when the window allows: a `poll` that ends before the
kernel's next tick (4 ms at HZ 250) arms the timer hardware for its end, and on a
virtual machine that is a trip to the hypervisor (6 to 11 us of CPU per request
measured on this project's VM, more than a third of a loopback request); one of a tick
or more costs nothing more when the answer comes first.

The rules and a socket's state are in Rust (`hubgate._core.BriefWait`), and so is the
brief block itself (a `poll`, or `PlanExchange.drive`'s round trips): Trio's clock, the
run's first deadline, the task's cancellation and the run queue's length are read there
from Trio's runner in one go (not public: `tasks_runnable` in Trio's public statistics
first counts every socket Trio waits on, 4 us with one, 24 us with 300), with Trio's
public calls as fallback where the runner is not as expected (`TrioRun`).
"""

from __future__ import annotations

import math
import time
from typing import Any

import trio

from hubgate._core import BriefWait, TrioRun, mark_pass

SLICE_S = BriefWait.SLICE_S
"""About the longest the other tasks of the run are kept waiting by brief blocks in a row."""


def _internals() -> tuple[Any, Any]:
    """Trio's per-thread run state (its runner and run queue) and its `SystemClock`
    type; None, None in a Trio without them."""
    try:
        from trio._core import _run, _run_context
    except ImportError:  # another Trio: the public calls
        return None, None
    return getattr(_run_context, "GLOBAL_RUN_CONTEXT", None), getattr(_run, "SystemClock", None)


def public_facts() -> tuple[float, float, bool, int]:
    """Trio's clock, the run's first deadline, whether this task is cancelled and how many
    tasks are runnable, by Trio's public calls (`TrioRun`'s fallback)."""
    now = trio.current_time()
    statistics = trio.lowlevel.current_statistics()
    cancelled = trio.current_effective_deadline() == -math.inf
    return now, now + statistics.seconds_to_next_deadline, cancelled, statistics.tasks_runnable


RUN = TrioRun(*_internals(), public_facts)
"""Where the brief blocks read the Trio run's facts."""


class Readable(BriefWait):
    """Waits for one socket (or file descriptor) to be readable (see the module docstring)."""

    __slots__ = ()

    def __new__(cls, sock: Any, run: TrioRun = RUN) -> Readable:
        """`run`: where the run's facts are read (tests: the public calls alone)."""
        return super().__new__(cls, sock if isinstance(sock, int) else sock.fileno(), run)

    async def by(self, deadline: float) -> bool:
        """True once the socket is readable, False once Trio's clock reached `deadline`
        first."""
        ready = self.briefly(deadline)
        if ready is None:
            return await self.in_trio(deadline)
        return ready

    async def in_trio(self, deadline: float) -> bool:
        """`by` through Trio's scheduler: at the slice's end, a socket that answers
        quickly lets the other tasks run (a checkpoint, no registration, no cancel
        scope) and blocks briefly again; any other waits the Trio way."""
        if not self.take_missed() and 2.0 * self.answer_s < SLICE_S:  # the slice ended
            try:
                await trio.lowlevel.checkpoint()
            finally:
                mark_pass()
            ready = self.briefly(deadline)
            if ready is not None:
                return ready
            self.take_missed()
        fd = self.fd
        began = time.perf_counter()
        ready = True
        try:
            if trio.current_effective_deadline() <= deadline:  # no scope: that one cancels first
                await trio.lowlevel.wait_readable(fd)
            else:
                ready = False
                with trio.CancelScope(deadline=deadline):
                    await trio.lowlevel.wait_readable(fd)
                    ready = True
        finally:
            ended = mark_pass()
        self.answer_s += (ended - began - self.answer_s) / 8.0
        return ready
