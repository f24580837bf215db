"""Energy prices (an optional input through the API) and which slots are cheap for a session.

Sans-IO, times in epoch seconds. `PriceSeries` holds prices per interval (hourly or
15-minute, any currency per kWh); nothing is fetched from anywhere. `cheap_now` tells, for a
session with a deadline, whether the present slot is among the cheapest it needs before its
departure: walking the slots it can still use from the cheapest (the later of equal
prices first), until their hours at its maximum power cover what it still needs, the
present slot is cheap when it is at or under the price that walk stopped at. A session
with slack holds back to what the deadline plan asks of it now while the slot is not cheap
(`control.deadlines`), and charges freely in the cheap ones.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence

HOUR_S = 3600.0
MAX_POINTS = 7 * 96
"""A week of 15-minute prices is kept at most (older ones are dropped first)."""


class PriceSeries:
    """Prices per interval: (start, end, price), non-overlapping, in time order."""

    def __init__(self) -> None:
        self._starts: list[float] = []
        self._points: list[tuple[float, float, float]] = []
        self.listeners: list[Callable[[], None]] = []
        """Called after every change (`control.kept_inputs` saves them)."""

    def put(self, start: float, interval_s: float, prices: Sequence[float]) -> None:
        """Prices for consecutive intervals from `start`; they replace what was known for
        the time they cover."""
        if not interval_s > 0:
            raise ValueError(f"interval must be above 0 s, got {interval_s}")
        end = start + interval_s * len(prices)
        kept = [p for p in self._points if p[1] <= start or p[0] >= end]
        new = [
            (start + k * interval_s, start + (k + 1) * interval_s, float(price))
            for k, price in enumerate(prices)
        ]
        self._points = sorted(kept + new)[-MAX_POINTS:]
        self._starts = [p[0] for p in self._points]
        self._changed()

    def clear(self) -> None:
        """Forget every price."""
        self._points, self._starts = [], []
        self._changed()

    def replace(self, points: Sequence[tuple[float, float, float]]) -> None:
        """Know exactly `points` (start, end, price; non-overlapping, in time order)."""
        self._points = list(points)[-MAX_POINTS:]
        self._starts = [p[0] for p in self._points]
        self._changed()

    def _changed(self) -> None:
        for listener in self.listeners:
            listener()

    def points(self, since: float = float("-inf")) -> list[tuple[float, float, float]]:
        """The intervals (start, end, price) that end after `since`."""
        return [p for p in self._points if p[1] > since]

    def at(self, wall: float) -> float | None:
        """The price at `wall`, None where none is known."""
        k = bisect.bisect_right(self._starts, wall) - 1
        if k >= 0 and wall < self._points[k][1]:
            return self._points[k][2]
        return None

    def slot_prices(self, starts: Sequence[float], ends: Sequence[float]) -> list[float | None]:
        """Per slot, the time-weighted price over it; None unless prices cover it whole."""
        out: list[float | None] = []
        for a, b in zip(starts, ends, strict=True):
            k = max(bisect.bisect_right(self._starts, a) - 1, 0)
            covered = weighted = 0.0
            while k < len(self._points) and self._points[k][0] < b:
                lo, hi, price = self._points[k]
                overlap = min(hi, b) - max(lo, a)
                if overlap > 0:
                    covered += overlap
                    weighted += overlap * price
                k += 1
            out.append(weighted / covered if b > a and covered >= (b - a) - 1e-6 else None)
        return out

    def __bool__(self) -> bool:
        return bool(self._points)


def cheap_now(
    prices: Sequence[float | None],
    slot_s: Sequence[float],
    departure_s: float,
    need_wh: float,
    max_w: float,
) -> bool:
    """Whether slot 0 is among the cheapest slots a session needs: `prices` and `slot_s`
    per slot from now, its departure in s from now, what it still needs and its maximum
    power. True when the present price is unknown (no reason to hold back)."""
    if prices[0] is None or not need_wh > 0 or not max_w > 0:
        return True
    usable: list[tuple[float, float, float]] = []  # (price, -start, hours)
    start = 0.0
    for price, length in zip(prices, slot_s, strict=True):
        hours = max(min(departure_s - start, length), 0.0) / HOUR_S
        if hours <= 0:
            break
        if price is not None:
            usable.append((price, -start, hours))
        start += length
    usable.sort()
    needed_h = need_wh / max_w
    for price, _, hours in usable:
        if prices[0] <= price:
            return True
        needed_h -= hours
        if needed_h <= 0:
            return False
    return True
