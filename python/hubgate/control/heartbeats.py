"""Every charger's heartbeat (its watchdog's feed) on its own period, from one timer.

A heap of when each charger's next heartbeat is due: the timer wakes at the first and starts
every one due within `HEARTBEAT_EARLY_S`, each in a task of its own cut at its period (one
still running when its next is due is not started twice). The first ones are spread over
the period, so they do not all land in one cycle; each charger's period is read again for
its next beat (a charger may learn its watchdog's; None: no more beats).
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import trio

from hubgate.control.authority import Authority, fenced
from hubgate.devices.model import Charger

log = logging.getLogger(__name__)

HEARTBEAT_EARLY_S = 0.1
"""A charger's heartbeat goes out up to this long before it is due, with every other one
due by then: one wake-up of the timer for them all (a watchdog fed early is fed; one task
asleep per charger cost a wake-up per heartbeat, 500 at depot-500)."""


@runtime_checkable
class QuietBeat(Protocol):
    """A charger whose heartbeat mostly has nothing to send (an OCPP lease, renewed only when
    its renewal is due): while it would send nothing, the timer starts no task for it and
    looks again when it comes due, or after its period if that is sooner (on depot-200 the
    OCPP connectors' beats were 10 tasks a second, nearly all of them renewing nothing)."""

    def heartbeat_quiet_for_s(self) -> float:
        """How long from now `heartbeat` would still send nothing; 0: it may send now."""


async def feed_watchdogs(
    chargers: Sequence[tuple[str, Charger]],
    epoch_for: Callable[[int], int | None],
    authority: Authority,
) -> None:
    """Send `chargers`' heartbeats until cancelled: the one at `i` under `epoch_for(i)`
    when that is not None (a standby, or a charger not to be fed now, is skipped)."""
    start, due = trio.current_time(), []
    for i, (_, charger) in enumerate(chargers):
        period = charger.heartbeat_period_s
        if period is not None:
            due.append((start + period * (i + 1) / len(chargers), i))
    heapq.heapify(due)
    beating: set[int] = set()
    quiet_for = [c.heartbeat_quiet_for_s if isinstance(c, QuietBeat) else None for _, c in chargers]

    async def beat(i: int, epoch: int, period_s: float) -> None:
        name, charger = chargers[i]
        try:
            with trio.move_on_after(period_s):
                await fenced(authority, epoch, charger.heartbeat)()
        except Exception as exc:  # a missed heartbeat shows as unreachable later
            log.debug("heartbeat %s failed: %s", name, exc)
        finally:
            beating.discard(i)

    async with trio.open_nursery() as nursery:
        while due:
            await trio.sleep_until(due[0][0])
            now = trio.current_time()
            soon = now + HEARTBEAT_EARLY_S
            while due and due[0][0] <= soon:
                at, i = due[0]
                period = chargers[i][1].heartbeat_period_s
                if period is None:
                    heapq.heappop(due)
                    continue
                quiet = quiet_for[i]
                quiet_s = 0.0 if quiet is None or period <= HEARTBEAT_EARLY_S else quiet()
                if quiet_s > HEARTBEAT_EARLY_S:  # nothing to send before then
                    heapq.heapreplace(due, (now + min(quiet_s, period), i))
                    continue
                heapq.heapreplace(due, (at + period if at + period > soon else now + period, i))
                epoch = None if i in beating else epoch_for(i)
                if epoch is not None:
                    beating.add(i)
                    nursery.start_soon(beat, i, epoch, period)
