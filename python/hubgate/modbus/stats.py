"""Request statistics per device (or OCPP charger): counts and latency quantiles.

`RequestStats` is in Rust (`hubgate._core`), so recording a request costs one call and no
Python frame (every Modbus request and OCPP answer records one). Latencies go into a
`QuantileSketch` (`hubgate.quantiles`: 1 % relative error, at most ~1,000 buckets), so
memory is bounded however long the gateway runs, and a p99 is the p99 that was measured,
not the edge of a histogram bucket.
"""

from __future__ import annotations

from hubgate._core import RequestStats

__all__ = ["RequestStats"]
