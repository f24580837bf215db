"""Allocation speed: one cycle from the Python call, hubgate against the pure-Python reference.

One group per size (10, 100, 1,000, 10,000 connectors on a 4-level tree, 3
phases, mixed 1-phase and 3-phase), `impl` in [hubgate, python-reference].
The reference runs few rounds (about a second per cycle at 10,000). Targets (issue 6): median <= 100 us at 1,000 and <= 2 ms at 10,000,
>= 100x the reference. Plus memory over 10,000 cycles (RSS and tracemalloc).
"""

from __future__ import annotations

import itertools
import tracemalloc
from array import array
from collections.abc import Callable
from pathlib import Path

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from hubgate._core import Allocator
from tests.support.allocation_reference import ReferenceAllocator
from tests.support.allocation_sites import Site, hub

SIZES = [10, 100, 1_000, 10_000]
REFERENCE_ROUNDS = {10: 50, 100: 20, 1_000: 5, 10_000: 3}
SMOKE_CONNECTORS = 1_000
"""The largest site under `--benchmark-disable` (the reference takes ~1 s a cycle at 10,000)."""


def steady_cycle(site: Site, impl: str) -> Callable[[], object]:
    """A cycle function over fixed inputs (the clock advances), after warm-up."""
    clock = itertools.count(1.0)
    if impl == "hubgate":
        core = Allocator(site.nodes, site.connectors)
        base, ev, wanting = array("d", site.base), array("d", site.ev_max), bytes(site.wanting)

        def cycle() -> object:
            return core.allocate(next(clock), base, ev, wanting, grid_operator_w=site.gop)

    else:
        ref = ReferenceAllocator(site.nodes, site.connectors)

        def cycle() -> object:
            return ref.allocate(
                next(clock), site.base, site.ev_max, site.wanting, grid_operator_w=site.gop
            )

    for _ in range(3):
        cycle()
    return cycle


@pytest.mark.parametrize("impl", ["hubgate", "python-reference"])
@pytest.mark.parametrize("connectors", SIZES)
def test_allocate_cycle(
    benchmark: BenchmarkFixture, impl: str, connectors: int, smoke: bool
) -> None:
    benchmark.group = f"allocate-{connectors}-connectors"
    cycle = steady_cycle(hub(min(connectors, SMOKE_CONNECTORS) if smoke else connectors), impl)
    if impl == "hubgate":
        result = benchmark(cycle)
    else:
        result = benchmark.pedantic(cycle, rounds=REFERENCE_ROUNDS[connectors], iterations=1)
    assert result is not None


def rss_bytes() -> int:
    """Resident set size of this process."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096


@pytest.mark.benchmark(group="memory-10000-cycles")
@pytest.mark.parametrize("impl", ["hubgate"])
def test_memory_flat_over_10000_cycles(benchmark: BenchmarkFixture, impl: str, smoke: bool) -> None:
    """10,000 cycles at 1,000 connectors, with changing wanting flags: RSS and
    Python heap growth after a 1,000-cycle warm-up (a tenth of each under
    `--benchmark-disable`)."""
    cycles = 1_000 if smoke else 10_000
    site = hub(1_000)
    core = Allocator(site.nodes, site.connectors)
    base, ev = array("d", site.base), array("d", site.ev_max)
    flags = [bytes(site.wanting), bytes(w if i % 7 else 0 for i, w in enumerate(site.wanting))]
    clock = itertools.count(1.0)

    def run(cycles: int) -> None:
        for n in range(cycles):
            result = core.allocate(
                next(clock), base, ev, flags[(n // 50) % 2], grid_operator_w=site.gop
            )
            assert len(result.setpoint_a) == 1_000

    run(cycles // 10)
    tracemalloc.start()
    rss_before = rss_bytes()
    heap_before = tracemalloc.get_traced_memory()[0]
    benchmark.pedantic(run, args=(cycles,), rounds=1, iterations=1)
    rss_growth = rss_bytes() - rss_before
    heap_growth = tracemalloc.get_traced_memory()[0] - heap_before
    tracemalloc.stop()
    benchmark.extra_info["rss_growth_bytes"] = rss_growth
    benchmark.extra_info["python_heap_growth_bytes"] = heap_growth
    assert rss_growth < 1 << 20, f"RSS grew by {rss_growth} bytes over {cycles} cycles"
    assert heap_growth < 64 << 10, f"Python heap grew by {heap_growth} bytes"
