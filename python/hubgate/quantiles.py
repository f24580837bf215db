"""A streaming quantile sketch for latencies: constant memory, a bounded relative error.

The DDSketch idea (Masson, Rim, Lee: "DDSketch: a fast and fully-mergeable quantile sketch
with relative-error guarantees", VLDB 2019), in Rust (`hubgate_core::modbus::latency`, also
inside `RequestStats`): a value x > 0 counts in bucket ceil(log_gamma(x)) with
gamma = (1 + a) / (1 - a); every value in a bucket is within a relative error `a` of the
bucket's representative 2 gamma^i / (gamma + 1), so a quantile read from the buckets is
within `a` of the true one. Values below `floor` count in one bucket (a latency under 1 us
is "under 1 us"), so for latencies of 1 us to 1000 s at 1 % the sketch holds at most
~1,040 buckets however many values it saw, one array of counts from the lowest bucket used
to the highest (8 bytes a bucket: at most about 8 KiB a sketch).
"""

from __future__ import annotations

from hubgate._core import QuantileSketch

__all__ = ["QuantileSketch"]
