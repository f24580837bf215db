"""Garbage-collector tuning for hubgate's long-running servers."""

from __future__ import annotations

import gc

FULL_COLLECTION_EVERY = 1000
"""Young-generation collections between full ones (CPython's default is 10)."""


def settle_gc() -> None:
    """Call once after start-up: keep garbage-collector pauses short under many connections.

    The import-time heap (schemas, models, modules) is frozen out of every future scan,
    and full collections become rarer; cyclic garbage is still collected, and reference
    counting frees everything else at once. Measured with 3,000 OCPP stations on
    loopback, this cut the server's p99 response time from about 400 ms to about 30 ms
    (bench/test_bench_ocpp.py).
    """
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
