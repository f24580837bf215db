"""A metered node's base load seen ahead while it rises (sans-IO).

When a node's base load climbs steadily (a cloud over the PV, a load ramping up), the EVs
hubgate lowers each cycle keep drawing their old current for their reaction time, so the
import runs that far behind the rise: in the pv-cloud scenario a 280 kW PV falling 7.5 kW/s
took the depot 13.5 kW over its 1,000 kW connection for 27 s with the base counted as
measured. So a rising base is counted where it will be `AHEAD_S` later: the measured base
plus its slope (least squares over the last `WINDOW_S`, one sample a second) times
`AHEAD_S`. A falling or steady base is counted as measured; what hubgate itself commands
(the battery's power) is left out of the slope, so a battery it turns down is no trend.
"""

from __future__ import annotations

from collections import deque

from hubgate.control.decisions import Phases3

WINDOW_S = 10.0
"""How far back the slope is fitted: long enough that a base load's noise from one reading
to the next is no trend."""

AHEAD_S = 5.0
"""How far ahead a rising base is counted: the time an EV takes to follow a lower offer
(IEC 61851-1 Annex A: within 5 s of a change of the duty cycle)."""

SAMPLE_S = 1.0
"""One sample a second at most is kept (a 0.1 s cycle fits the same ten)."""

MIN_SAMPLES = 3


class BaseTrend:
    """The rise of each metered node's base load, per phase."""

    def __init__(self) -> None:
        self._samples: dict[int, deque[tuple[float, Phases3]]] = {}

    def ahead(self, node: int, now: float, base: Phases3, own_a: float = 0.0) -> Phases3:
        """`base` (A per phase, measured this cycle) plus its rise over the next `AHEAD_S`
        while it rises; `own_a`: what hubgate's own devices take off it now (a discharging
        battery below the node, even per phase), left out of the slope."""
        samples = self._samples.setdefault(node, deque())
        uncontrolled = (base[0] + own_a, base[1] + own_a, base[2] + own_a)
        if not samples or now - samples[-1][0] >= SAMPLE_S - 1e-9:
            samples.append((now, uncontrolled))
        while now - samples[0][0] > WINDOW_S + 1e-9:
            samples.popleft()
        if len(samples) < MIN_SAMPLES:
            return base
        mean_t = sum(t for t, _ in samples) / len(samples)
        spread = sum((t - mean_t) ** 2 for t, _ in samples)
        rise = [0.0, 0.0, 0.0]
        for p in range(3):
            mean = sum(values[p] for _, values in samples) / len(samples)
            slope = sum((t - mean_t) * (values[p] - mean) for t, values in samples) / spread
            rise[p] = max(slope, 0.0) * AHEAD_S
        return (base[0] + rise[0], base[1] + rise[1], base[2] + rise[2])

    def lost(self, node: int) -> None:
        """Its meter is not trusted now: a trend begins anew once it is."""
        self._samples.pop(node, None)
