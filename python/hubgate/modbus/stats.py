"""Request statistics per device (or OCPP charger): counts and latency quantiles.

`RequestStats` is in Rust (`hubgate._core`), so recording a request costs one call and no
Python frame (every Modbus request and OCPP answer records one). Latencies go into a
quantile sketch (`hubgate_core::modbus::latency`: the DDSketch idea, Masson, Rim, Lee,
VLDB 2019): a value x counts in bucket ceil(log_gamma(x)), gamma = (1 + a) / (1 - a), so a
quantile is within a = 1 % of the true one; latencies under 1 us count as 1 us, so 1 us to
1000 s take at most ~1,040 buckets (8 bytes each, 16 KiB at most). Memory is bounded however long the
gateway runs, and a p99 is the p99 that was measured, not the edge of a histogram bucket.
"""

from __future__ import annotations

from hubgate._core import RequestStats

__all__ = ["RequestStats"]
