"""Demand charges: the import averaged over the grid operator's metering interval, and a cap
that keeps each interval under the month's target.

Sans-IO: `DemandCharge.sample(wall, import_w)` integrates the connection's import (W,
export counts as 0) into the current interval (15 minutes by default, aligned to the
clock); a closed interval's average may raise the month's peak. `cap_w(wall)` is the import
the rest of the interval may average so that the whole interval stays at the target: the
configured `target_kw`, or without one the month's peak so far (no cap before the month's
first interval closes). The control loop holds the connection's import under the cap like a
peak target: a battery discharges and the EVs defer (those with a deadline floor first
served). `DemandStore` keeps the state in a small JSON file so that the month's peak and
the interval so far survive a restart.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

log = logging.getLogger(__name__)

HOUR_S = 3600.0

DEMAND_LAG_CYCLES = 2
"""A lower demand cap takes hold about this many control cycles later (the command, the
EV's reaction): the import until then is counted as spent (`DemandCharge.cap_w`)."""

SAVE_EVERY_S = 60.0
"""The demand state is saved at least this often (and whenever an interval closes)."""


@dataclass
class DemandState:
    """The month's peak and the current interval (what is persisted)."""

    month: str
    """The month of the peak, `YYYY-MM` in the site's timezone."""
    peak_kw: float
    """The highest closed interval's average import this month."""
    interval_start: float
    """The current interval's start (epoch s)."""
    interval_wh: float
    """Import energy in the current interval so far."""
    last_at: float
    """The last sample (epoch s)."""


@dataclass(frozen=True, slots=True)
class DemandView:
    """The demand figures for the API and the decision record (kW, epoch s)."""

    interval_start: float
    interval_s: float
    average_kw: float
    """The interval's average import so far (over the time elapsed)."""
    projection_kw: float
    """The interval's average if the present import holds until its end."""
    target_kw: float | None
    month_peak_kw: float
    cap_kw: float | None
    """The import the rest of the interval may average; None: no cap."""


class DemandCharge:
    """Interval averages, the month's peak and the cap (see the module docstring)."""

    def __init__(
        self,
        interval_s: float,
        target_kw: float | None,
        timezone: str = "UTC",
        state: DemandState | None = None,
    ) -> None:
        self.interval_s = interval_s
        self.target_kw = target_kw
        self.zone = ZoneInfo(timezone)
        self.state = state
        self.import_w = 0.0
        self.closed: list[tuple[float, float]] = []
        """Intervals closed since the caller last took them: (start, average kW)."""

    def _month(self, wall: float) -> str:
        return datetime.fromtimestamp(wall, self.zone).strftime("%Y-%m")

    def _start(self, wall: float) -> float:
        return wall - wall % self.interval_s

    def sample(self, wall: float, import_w: float | None) -> None:
        """Count the import since the last sample (the mean of the two samples; held at the
        last known value while unknown) and close the interval when the clock passed its end
        (what came after its end counts in the next)."""
        state = self.state
        if state is None or wall - state.last_at > self.interval_s:
            state = self._resumed(wall)
        before = self.import_w
        if import_w is not None:
            self.import_w = max(import_w, 0.0)
        watts = (before + self.import_w) / 2  # between the two samples
        start = self._start(wall)
        carried = 0.0  # the part after the interval's end belongs to the next one
        if wall > state.last_at:
            split = max(start, state.last_at)
            state.interval_wh += watts * (split - state.last_at) / HOUR_S
            carried = watts * (wall - split) / HOUR_S
            state.last_at = wall
        if start <= state.interval_start:
            state.interval_wh += carried
        else:
            average_kw = state.interval_wh / (self.interval_s / HOUR_S) / 1000
            month = self._month(state.interval_start)
            if month != state.month:
                state.month, state.peak_kw = month, 0.0
            state.peak_kw = max(state.peak_kw, average_kw)
            self.closed.append((state.interval_start, average_kw))
            state.interval_start, state.interval_wh = start, carried
        if self._month(wall) != state.month:
            state.month, state.peak_kw = self._month(wall), 0.0
        self.state = state

    def _resumed(self, wall: float) -> DemandState:
        """A state after a gap (or the first sample): the month's peak is kept when it is
        this month's, the interval so far when it is still this interval; an interval left
        unfinished counts with what it had (its true average was no lower)."""
        old = self.state
        start = self._start(wall)
        month = self._month(wall)
        peak = 0.0
        if old is not None and old.month == month:
            peak = old.peak_kw
            if self._month(old.interval_start) == month:
                peak = max(peak, old.interval_wh / (self.interval_s / HOUR_S) / 1000)
        if old is not None and old.interval_start == start:
            return DemandState(month, peak, start, old.interval_wh, max(old.last_at, start))
        return DemandState(month, peak, start, 0.0, wall)

    def target_w(self) -> float:
        """The interval average to stay under, W (infinity for none yet)."""
        if self.target_kw is not None:
            return self.target_kw * 1000
        if self.state is None or self.state.peak_kw <= 0:
            return math.inf
        return self.state.peak_kw * 1000

    def cap_w(
        self,
        wall: float,
        lag_s: float = 0.0,
        most_w: float = math.inf,
        leaving: Sequence[tuple[float, float]] = (),
    ) -> float:
        """The import the rest of the current interval may reach, W (infinity: none).
        `lag_s`: how long the present import goes on before a new cap takes hold (commands
        and the EVs' reaction); it is counted as spent first. Without more, the interval's
        budget is spread evenly over the rest of it. `most_w`: the most the site can import
        now; `leaving`: (when, W) the sessions that leave before the interval ends take
        with them: the cap is levelled over what the site can still take (`level_w`), so
        that the budget the departures leave is spent before them, not lost."""
        target = self.target_w()
        if self.state is None or math.isinf(target):
            return math.inf
        end = self.state.interval_start + self.interval_s
        remaining = end - wall
        if remaining <= 0:
            return math.inf
        budget_wh = target * self.interval_s / HOUR_S - self.state.interval_wh
        if remaining <= lag_s:  # what is asked now lands in the next interval: hold to both
            return max(min(budget_wh * HOUR_S / remaining, target), 0.0)
        budget_wh -= self.import_w * lag_s / HOUR_S
        even_w = max(budget_wh * HOUR_S / (remaining - lag_s), 0.0)
        if math.isinf(most_w) or not leaving:
            return even_w
        spans, start, most = [], wall + lag_s, most_w
        for when, watts in sorted(leaving):
            if when >= end:
                break
            if when <= wall + lag_s:  # its departure is past: it is still here
                continue
            if when > start:
                spans.append((when - start, max(most, 0.0)))
                start = when
            most -= watts  # each session that leaves, also several at once
        spans.append((end - start, max(most, 0.0)))
        return max(min(level_w(budget_wh * HOUR_S, spans), most_w), even_w)

    def view(self, wall: float, cap_w: float | None = None) -> DemandView | None:
        """The figures now, None before the first sample; `cap_w`: the cap applied (the
        planner's, levelled and counting its lag; None: the rest's budget spread evenly)."""
        state = self.state
        if state is None:
            return None
        elapsed = max(wall - state.interval_start, 0.0)
        remaining = max(self.interval_s - elapsed, 0.0)
        hours = self.interval_s / HOUR_S
        average = state.interval_wh / (elapsed / HOUR_S) / 1000 if elapsed > 0 else 0.0
        projection = (state.interval_wh + self.import_w * remaining / HOUR_S) / hours / 1000
        target = self.target_w()
        cap = self.cap_w(wall) if cap_w is None else cap_w
        return DemandView(
            interval_start=state.interval_start,
            interval_s=self.interval_s,
            average_kw=average,
            projection_kw=projection,
            target_kw=None if math.isinf(target) else target / 1000,
            month_peak_kw=state.peak_kw,
            cap_kw=None if math.isinf(cap) else cap / 1000,
        )


def level_w(budget_j: float, spans: Sequence[tuple[float, float]]) -> float:
    """The cap c for which the rest of an interval spends `budget_j` (J): `spans` in time
    order, (s, the most the site can import then, W, never rising); each span takes
    min(c, its most). Infinity when even every span at its most leaves budget unspent."""
    if sum(length * most for length, most in spans) <= budget_j:
        return math.inf
    below_j, capped_s = 0.0, sum(length for length, _ in spans)
    for k in range(len(spans) - 1, -1, -1):  # the lowest spans first (the latest)
        length, most = spans[k]
        cap = (budget_j - below_j) / capped_s  # spans 0..k capped, the later ones at their most
        if cap >= most:  # span k is under the cap too
            below_j += length * most
            capped_s -= length
            continue
        return max(cap, 0.0)
    return math.inf


class DemandStore:
    """The demand state in a JSON file, replaced atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._saved_at = -math.inf

    def keep(self, demand: DemandCharge, now: float) -> None:
        """Save `demand`'s state when an interval closed, else every `SAVE_EVERY_S`; a file
        that cannot be written is a warning (the state lives on in memory)."""
        if demand.state is None or (not demand.closed and now - self._saved_at < SAVE_EVERY_S):
            return
        demand.closed.clear()
        try:
            self.save(demand.state)
        except OSError as exc:
            log.warning("demand state not saved to %s: %s", self.path, exc)
        self._saved_at = now

    def load(self) -> DemandState | None:
        """The saved state; None when there is none or it cannot be read (then the month's
        peak starts again from the next interval)."""
        try:
            data = json.loads(self.path.read_text())
            return DemandState(
                month=str(data["month"]),
                peak_kw=float(data["peak_kw"]),
                interval_start=float(data["interval_start"]),
                interval_wh=float(data["interval_wh"]),
                last_at=float(data["last_at"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save(self, state: DemandState) -> None:
        """Write the state (to a temporary file first, then renamed over the old one)."""
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(json.dumps(asdict(state)))
        os.replace(partial, self.path)
