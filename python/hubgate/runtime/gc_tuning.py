"""Garbage-collector and C-heap tuning for hubgate's long-running servers."""

from __future__ import annotations

import ctypes
import gc
from collections.abc import Callable
from functools import cache

import trio

YOUNG_COLLECTION_AFTER = 10_000
"""Tracked objects allocated (net of those freed) between young collections (CPython's
default is 700)."""
FULL_COLLECTION_EVERY = 1000
"""Middle-generation collections between full ones (CPython's default is 10)."""
TRIM_EVERY_S = 60.0
"""How often a gateway collects its cyclic garbage and gives the C heap's free pages back
(`keep_heap_trimmed`)."""


def settle_gc() -> None:
    """Call once after start-up: keep garbage-collector pauses short under many connections.

    The import-time heap (schemas, models, modules) is frozen out of every future scan,
    and full collections become rarer; cyclic garbage is still collected, and reference
    counting frees everything else at once. Measured with 3,000 OCPP stations on
    loopback, this cut the server's p99 response time from about 400 ms to about 30 ms
    (bench/test_bench_ocpp.py).

    Young collections come after `YOUNG_COLLECTION_AFTER` objects rather than 700: most of
    what a cycle or a message allocates is freed by then (by reference counting), so far
    fewer collections scan far fewer survivors. On depot-200 the collector's CPU time fell
    from 1.07 to 0.31 s in five minutes, 0.36 to 0.10 % of a core (docs/performance.md,
    session 14).
    """
    gc.collect()
    gc.freeze()
    _, middle, _ = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_AFTER, middle, FULL_COLLECTION_EVERY)


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim` (from the process's own symbols), None with another C library."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def trim_heap() -> bool:
    """Give the whole free pages inside the C heap back to the system (glibc's
    `malloc_trim(0)`); False where the C library has no such call.

    glibc returns only the heap's top by itself: the pages freed between blocks still in
    use stay resident. On depot-200 under load they grew the gateway by 2.4 MiB in its
    first twelve minutes (`mallinfo2`'s free bytes 0.6 to 3.0 MiB); one trim gave back
    4.6 MiB of a gateway's 8.4 MiB (docs/performance.md, session 10)."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


def collect_and_trim() -> None:
    """Collect the cyclic garbage of every generation, then `trim_heap`.

    `settle_gc` makes full collections rare (one after 1,000 of the middle generation's,
    and CPython skips those while the oldest generation grew by less than a quarter): a
    reference cycle that dies after its objects reached the oldest generation (a task, an
    exception with its traceback, a connection's state) then waits for one. On depot-200 at
    load 20 that grew Python's small-object heap by about 0.5 MiB a minute, with no full
    collection in ten minutes; one a minute kept it flat (docs/performance.md, session 13)."""
    gc.collect()
    trim_heap()


async def keep_heap_trimmed(
    every_s: float = TRIM_EVERY_S, trim: Callable[[], object] = collect_and_trim
) -> None:
    """`trim` every `every_s` until cancelled."""
    while True:
        await trio.sleep(every_s)
        trim()
