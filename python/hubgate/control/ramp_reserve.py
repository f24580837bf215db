"""Room kept for a base load that rises faster than the EVs follow (sans-IO).

hubgate lowers the EVs each cycle by what the meters show the base load rose, but an EV
follows a lower offer seconds late (IEC 61851-1 Annex A allows 5 s; slow trucks take
more): while the base keeps rising (a cloud over the PV, a load ramping up), the import
runs that far behind it. In the pv-cloud scenario a 280 kW PV falling 7.5 kW/s took the
depot 13.5 kW over its 1,000 kW connection for 27 s, with the battery already at its
rating.

So a site does what a control engineer would: the fast actuator first, the slow one for
the rest, ahead by its lag. Each metered node's uncontrolled base (the battery's own
power left out: hubgate commands it) is fitted a slope over the last `WINDOW_S`; while it
rises significantly, the rise over the EVs' measured follow time (`FollowLag`) is what the
EVs must have given way by then. The battery answers a measured rise within a cycle, so
on the nodes it feeds the part it can still add (`SiteEnergy.discharge_spare_w`) is left
to it; only the rest is withheld from the EVs, as base load in their allocation alone (the
battery's balance reads the meters, never this reserve). It is never more than the EVs
below the node draw above their minimums: a forecast cuts them, never pauses them.
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from collections.abc import Callable, Collection, Sequence
from typing import Protocol

from hubgate.control.connector_runtime import ConnectorRuntime
from hubgate.control.decisions import Phases3
from hubgate.control.site_energy import Allocated
from hubgate.control.site_model import SiteModel

EV_FOLLOW_S = 5.0
"""The follow time assumed before enough have been measured: IEC 61851-1 Annex A, an EV
follows a change of the duty cycle within 5 s."""

WINDOW_S = 10.0
"""How far back the slope is fitted: long enough that a base load's noise from one
reading to the next is no trend."""

SAMPLE_S = 1.0
"""One sample a second at most is kept (a 0.1 s cycle fits the same ten)."""

MIN_SAMPLES = 4

SIGNIFICANT = 2.5
"""A slope counts once the Mann-Kendall statistic is this many standard deviations above 0
(one-sided, under 1 %): a wandering base passes rarely, and then by little; a step, at
most 25 of the 45 pairs of ten samples rising, never (29 needed), while a ramp passes
from its fourth second on."""

TIE_A = 0.01
"""Samples closer than this are even (a meter's resolution)."""

LAGS_KEPT = 64
MIN_LAGS = 5
"""Follow times measured before their mean replaces `EV_FOLLOW_S`."""


class FollowLag:
    """The EVs' measured time from a lowered setpoint to a reading that shows it followed
    (the charger's and the EV's delays, and the reading's): the mean of the last
    `LAGS_KEPT`, each at most `most_s` (the allocator's `settle_s`)."""

    def __init__(self, most_s: float) -> None:
        self.most_s = most_s
        self._lags: deque[float] = deque(maxlen=LAGS_KEPT)

    def followed(self, lag_s: float | None) -> None:
        """An EV seen above its lowered setpoint followed it `lag_s` after it was set
        (None: not measured, `ConnectorRuntime.followed`)."""
        if lag_s is not None:
            self._lags.append(min(max(lag_s, 0.0), self.most_s))

    @property
    def seconds(self) -> float:
        """The follow time to plan with."""
        if len(self._lags) < MIN_LAGS:
            return min(EV_FOLLOW_S, self.most_s)
        return sum(self._lags) / len(self._lags)


class BaseRamp:
    """The significant rise of each metered node's uncontrolled base load (A/s per phase):
    the least-squares slope over the last `WINDOW_S`, counted where the Mann-Kendall test
    finds the samples rising (`SIGNIFICANT`): on order alone, so a spike or a step (a start
    seen in the meter before in its charger's values) is no ramp."""

    def __init__(self) -> None:
        self._samples: dict[int, deque[tuple[float, Phases3]]] = {}
        self._rates: dict[int, Phases3] = {}

    def rate(self, node: int, now: float, base: Phases3) -> Phases3:
        """Add this cycle's `base` of `node` (one sample a `SAMPLE_S`); its rise per second
        per phase, 0 where it is not rising significantly."""
        samples = self._samples.setdefault(node, deque())
        if samples and now - samples[-1][0] < SAMPLE_S - 1e-9:
            return self._rates.get(node, _FLAT)
        samples.append((now, base))
        while now - samples[0][0] > WINDOW_S + 1e-9:
            samples.popleft()
        self._rates[node] = rates = _rising(samples)
        return rates

    def forget(self, keep: Collection[int]) -> None:
        """Drop the nodes not in `keep` (their meters are not trusted or not read now): a
        slope begins anew once they are."""
        for node in [n for n in self._samples if n not in keep]:
            del self._samples[node]
            self._rates.pop(node, None)


def _rising(samples: Sequence[tuple[float, Phases3]]) -> Phases3:
    n = len(samples)
    if n < MIN_SAMPLES:
        return _FLAT
    mean_t = sum(t for t, _ in samples) / n
    spread = sum((t - mean_t) ** 2 for t, _ in samples)
    sd = math.sqrt(n * (n - 1) * (2 * n + 5) / 18)  # of the Mann-Kendall S, without ties
    rates = [0.0, 0.0, 0.0]
    for p in range(3):
        values = [v[p] for _, v in samples]
        mean = sum(values) / n
        slope = sum((t - mean_t) * (v[p] - mean) for t, v in samples) / spread
        if slope <= 0:
            continue
        s = sum(
            (later > earlier + TIE_A) - (later < earlier - TIE_A)
            for i, earlier in enumerate(values)
            for later in values[i + 1 :]
        )
        if (s - 1) / sd >= SIGNIFICANT:
            rates[p] = slope
    return (rates[0], rates[1], rates[2])


_FLAT: Phases3 = (0.0, 0.0, 0.0)


class Battery(Protocol):
    """The battery as the rule sees it (`SiteEnergy`)."""

    def battery_a(self, node: int) -> float:
        """Its discharge as `node`'s meter shows it (an even current per phase, A)."""

    def spare_a(self, node: int) -> float:
        """What it can still add through `node` within a cycle (A per phase)."""


class RampReserve:
    """The per-cycle rule: what to withhold from the EVs at each metered node."""

    def __init__(self, node_ids: Sequence[str], hard_a: Sequence[Phases3], settle_s: float) -> None:
        """`hard_a`: each node's own limits per phase (`own_limits_a`)."""
        self.node_ids = node_ids
        self.hard_a = hard_a
        self.ramp = BaseRamp()
        self.lag = FollowLag(settle_s)
        self._last: dict[int, Phases3] = {}
        """Each metered node's base in the last cycle."""

    def withhold(
        self,
        now: float,
        base: array[float],
        loads: Sequence[Phases3],
        metered: Collection[int],
        battery: Battery,
        evs: Callable[[], tuple[Sequence[float], Sequence[float]]],
    ) -> list[str]:
        """Add to `base` (A, three per node) what each node in `metered` must keep free for
        its base load's rise over the EVs' follow time, beyond what the battery can still
        add there; a note for each node it did. `loads`: each node's metered base this
        cycle; `evs`: what the EVs below each node take and were given above their minimums
        in the last cycle (`ev_use_a`; what the base rose since is taken from the latter
        first), asked for only once a node's base is rising. Only what the rise would take beyond the node's own limits is withheld."""
        self.ramp.forget(metered)
        self._last = {node: load for node, load in self._last.items() if node in metered}
        ahead = self.lag.seconds
        notes = []
        use_room: tuple[Sequence[float], Sequence[float]] | None = None
        for node in sorted(metered):
            own, load = battery.battery_a(node), loads[node]
            last, self._last[node] = self._last.get(node, load), load
            rates = self.ramp.rate(node, now, (load[0] + own, load[1] + own, load[2] + own))
            if not any(rates):
                continue
            spare = battery.spare_a(node)
            reserve = [0.0, 0.0, 0.0]
            if use_room is None:
                use_room = evs()
            use, room = use_room
            for p in range(3):
                at = 3 * node + p
                headroom = self.hard_a[node][p] - base[at] - use[at]
                beyond = rates[p] * ahead - spare - max(headroom, 0.0)
                reserve[p] = max(min(beyond, room[at] - max(load[p] - last[p], 0.0)), 0.0)
                base[at] += reserve[p]
            if any(reserve):
                notes.append(
                    f"{self.node_ids[node]} base rising {max(rates):.1f} A/s: "
                    f"{max(reserve):.1f} A kept from the EVs for their {ahead:.1f} s to "
                    f"follow (the battery can add {spare:.1f} A)"
                )
        return notes


def own_limits_a(model: SiteModel) -> list[Phases3]:
    """Each node's own limits per phase, its power limit as an even current: a soft target
    (the peak, the demand interval) is no reason to cut the EVs ahead."""
    limits: list[Phases3] = []
    for caps, kw in zip(model.caps_a, model.power_kw, strict=True):
        even = kw * 1000 / (3 * model.voltage_v)
        limits.append((min(caps[0], even), min(caps[1], even), min(caps[2], even)))
    return limits


def ev_use_a(
    model: SiteModel, connectors: Sequence[ConnectorRuntime], last: Allocated | None
) -> tuple[array[float], array[float]]:
    """What the EVs below each node take (the larger of their draw and their last setpoint)
    and what they were last given above their minimums (as much as they can give way
    without a pause): A, three per node, on the grid phases they draw on."""
    use: list[Phases3] = [runtime.draw for runtime in connectors]
    room: list[Phases3] = [(0.0, 0.0, 0.0)] * len(model.connectors)
    if last is not None:
        for i, info in enumerate(model.connectors):
            given = last.setpoint_a[i]
            if given <= 0:
                continue
            phase = connectors[i].ev_phase
            if phase is None and (info.one_phase or last.phases[i] == 1):
                phase = info.grid_phases[0]
            on = (given, given, given) if phase is None else _on(phase, given)
            use[i] = (max(use[i][0], on[0]), max(use[i][1], on[1]), max(use[i][2], on[2]))
            above = given - info.min_current_a
            if above > 0:
                room[i] = (above, above, above) if phase is None else _on(phase, above)
    return model.paths.sum_up(use), model.paths.sum_up(room)


def _on(phase: int, amps: float) -> Phases3:
    return (amps if phase == 0 else 0.0, amps if phase == 1 else 0.0, amps if phase == 2 else 0.0)
