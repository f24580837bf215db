"""A streaming quantile sketch for latencies: constant memory, a bounded relative error.

The DDSketch idea (Masson, Rim, Lee: "DDSketch: a fast and fully-mergeable quantile sketch
with relative-error guarantees", VLDB 2019): a value x > 0 counts in bucket
ceil(log_gamma(x)) with gamma = (1 + a) / (1 - a); every value in a bucket is within a
relative error `a` of the bucket's representative 2 gamma^i / (gamma + 1), so a quantile
read from the buckets is within `a` of the true one. Values below `floor` count in one
bucket (a latency under 1 µs is "under 1 µs"), so for latencies of 1 µs to 1000 s at 1 %
the sketch holds at most ~1,040 buckets however many values it saw.

The buckets are one array of counts from the lowest bucket used to the highest (8 bytes a
bucket: at most about 8 KiB a sketch), not a dict (about 90 bytes a bucket with its int
objects): a gateway keeps a sketch per device, and their tails fill in slowly for hours.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_right
from itertools import accumulate


class QuantileSketch:
    """Quantiles of every value added, each within `relative_accuracy` of the true one."""

    def __init__(self, relative_accuracy: float = 0.01, floor: float = 1e-6) -> None:
        if not 0 < relative_accuracy < 1:
            raise ValueError(f"relative_accuracy must be in (0, 1), got {relative_accuracy}")
        self.relative_accuracy = relative_accuracy
        self.floor = floor
        self._gamma = (1 + relative_accuracy) / (1 - relative_accuracy)
        self._per_log_gamma = 1 / math.log(self._gamma)
        self._floor_index = self._index(floor)
        self._counts = array("q")
        """Values counted per bucket, from bucket `_low` up."""
        self._low = 0
        self.count = 0
        self.max = 0.0

    def _index(self, value: float) -> int:
        return math.ceil(math.log(value) * self._per_log_gamma)

    def add(self, value: float, times: int = 1) -> None:
        """Count `value` `times` times (negative and NaN values count as the floor)."""
        # `_index` inlined: this runs for every Modbus request and OCPP answer.
        if value > self.floor:
            index = math.ceil(math.log(value) * self._per_log_gamma)
        else:
            index = self._floor_index
        counts = self._counts
        at = index - self._low
        if 0 <= at < len(counts):
            counts[at] += times
        else:
            self._widen(index)[index - self._low] += times
        self.count += times
        if value > self.max:
            self.max = value

    def _widen(self, index: int) -> array[int]:
        """The counts, widened to hold bucket `index`."""
        counts = self._counts
        if not counts:
            self._low = index
            counts.append(0)
        elif index < self._low:
            counts[:0] = array("q", bytes(8 * (self._low - index)))
            self._low = index
        else:
            counts.extend(bytes(index - self._low - len(counts) + 1))
        return counts

    def quantile(self, q: float) -> float | None:
        """The `q` quantile (0..1) of the values added; None before the first."""
        if self.count == 0:
            return None
        rank = q * (self.count - 1)
        at = bisect_right(list(accumulate(self._counts)), rank)
        if at == len(self._counts):
            return self.max
        index = self._low + at
        if index == self._floor_index:
            return self.floor
        estimate = 2 * self._gamma**index / (self._gamma + 1)
        return min(estimate, self.max)

    @property
    def buckets(self) -> int:
        """How many buckets hold values (the sketch's size)."""
        return len(self._counts) - self._counts.count(0)
