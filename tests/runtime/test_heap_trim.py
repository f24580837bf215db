"""A gateway collects its cyclic garbage and gives the C heap's free pages back to the
system, once a minute; after start-up its young collections wait for more objects."""

from __future__ import annotations

import gc
import subprocess
import sys
import weakref

import pytest
import trio
import trio.testing

from hubgate.runtime.gc_tuning import (
    TRIM_EVERY_S,
    YOUNG_COLLECTION_AFTER,
    collect_and_trim,
    keep_heap_trimmed,
    settle_gc,
)

FRAGMENTED = """
from pathlib import Path
from hubgate.runtime.gc_tuning import trim_heap

def rss_kib():
    status = Path("/proc/self/status").read_text()
    return int(next(l for l in status.splitlines() if l.startswith("VmRSS")).split()[1])

freed, kept = [], []
for _ in range(4000):  # 64 MiB of 16 KiB blocks, each followed by a 1 KiB block kept
    freed.append(b"\\1" * 16384)
    kept.append(b"\\2" * 1024)
del freed  # free but resident: the kept blocks keep it from the heap's top
before = rss_kib()
print(trim_heap(), before - rss_kib())
"""


def test_trim_gives_back_the_free_pages_between_blocks_in_use() -> None:
    done = subprocess.run(
        [sys.executable, "-c", FRAGMENTED], capture_output=True, text=True, check=True, timeout=120
    )
    trimmed, freed_kib = done.stdout.split()
    if trimmed == "False":
        pytest.skip("this C library has no malloc_trim")
    assert int(freed_kib) > 32 * 1024


async def test_trimmed_every_period(autojump_clock: trio.testing.MockClock) -> None:
    trims: list[float] = []
    with trio.move_on_after(10 * TRIM_EVERY_S + 1):
        await keep_heap_trimmed(trim=lambda: trims.append(trio.current_time()))
    assert trims == [TRIM_EVERY_S * k for k in range(1, 11)]


class _Cycle:
    def __init__(self) -> None:
        self.itself = self


def test_a_cycle_that_died_in_the_oldest_generation_is_collected() -> None:
    cycle = _Cycle()
    died = weakref.ref(cycle)
    gc.disable()  # only the collections below
    try:
        gc.collect(1)  # it survives a young collection: it moves to the oldest generation
        del cycle
        gc.collect(1)  # young collections do not look there
        assert died() is not None
        collect_and_trim()
        assert died() is None
    finally:
        gc.enable()


def _young_collections(alive: int) -> int:
    """How many young collections keeping `alive` new objects at once, then freeing them,
    runs (ten times over)."""
    young: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 0:
            young.append(1)

    gc.callbacks.append(seen)
    try:
        for _ in range(10):
            kept = [[k] for k in range(alive)]
            del kept
    finally:
        gc.callbacks.remove(seen)
    return len(young)


def test_after_settling_young_collections_wait_for_more_objects() -> None:
    """What a cycle keeps for a moment and frees by reference counting (a few thousand
    objects) no longer runs a young collection each time."""
    threshold = gc.get_threshold()
    alive = YOUNG_COLLECTION_AFTER // 2
    try:
        gc.set_threshold(700, 10, 10)  # CPython's default: several per round
        gc.collect()
        assert _young_collections(alive) >= 10
        settle_gc()
        gc.collect()
        assert _young_collections(alive) <= 1
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
