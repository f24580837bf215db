"""Allocation speed: one cycle of the Rust allocator on the synthetic hub, per size.

The same call as bench/test_bench_allocation.py (`hubgate` entry): fixed inputs,
an advancing clock, after three warm-up cycles.
"""

from __future__ import annotations

import itertools
from array import array
from collections.abc import Callable, Iterable

from hubgate._core import Allocator
from hubgate.benchmarking.hub_site import hub


def steady_cycle(connectors: int) -> Callable[[], object]:
    """One allocation cycle of a `connectors`-connector hub, warmed up."""
    site = hub(connectors)
    core = Allocator(site.nodes, site.connectors)
    base, ev, wanting = array("d", site.base), array("d", site.ev_max), bytes(site.wanting)
    clock = itertools.count(1.0)

    def cycle() -> object:
        return core.allocate(next(clock), base, ev, wanting, grid_operator_w=site.gop)

    for _ in range(3):
        cycle()
    return cycle


def measure_allocation(
    sizes: Iterable[int], time_call: Callable[[Callable[[], object]], float]
) -> dict[int, float]:
    """Seconds per allocation cycle at each size."""
    return {size: time_call(steady_cycle(size)) for size in sizes}
