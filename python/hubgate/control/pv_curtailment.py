"""PV curtailment: caps on the PV inverters that hold the site's feed-in to what it may
export, once per cycle (sans-IO).

What the site may export is the smaller of `grid.export_limit_kw` and the grid
operator's feed-in limit (§9 EEG: the control box's contacts W3, S2, S1 cap feed-in at
0, 30 and 60 % of the installed PV power; the relay profile's `feed_in_percent`). Where
neither is set, no inverter is capped.

The PV may produce what the site uses plus what it may export: the site's use is the
metered import plus everything the PV produces now, plus what this cycle's battery
command adds to its charging. Inverters whose output cannot be capped produce what
they produce; the others share the rest in proportion to their peak power, and none is
capped where the rest is at least its share of their peak. An inverter at its cap may
be able to give more: `spare_w` (a share `PROBE_SHARE` of its peak, at most what it is
capped by) is counted as surplus, so the battery and PV-mode EVs may start to use it
and the cap rises with them. Without a fresh grid meter what the site uses is not known:
the PV may give what the site may export, as if it used nothing.

With no gateway at all, an inverter whose fallback hubgate can set falls back to
`fallback_caps_w` of what the site may export when it last heard: `grid.export_limit_kw`,
or less while a feed-in contact is closed (it stays closed for all the inverter knows),
less the peak of the uncappable inverters, shared by peak.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from hubgate.profiles.model import Quantity

PROBE_SHARE = 0.05
"""Of a capped inverter's peak, what it is assumed to be able to give on top."""

AT_CAP_SHARE = 0.02
"""An inverter within this share of its peak below its cap is at its cap."""


@dataclass(frozen=True)
class PvUnit:
    """One PV inverter: its peak power (W) and whether its output can be capped."""

    id: str
    peak_w: float
    curtailable: bool


@dataclass(frozen=True)
class CurtailDecision:
    """The caps for this cycle, by inverter id (None: no cap), and what they stand for."""

    caps_w: dict[str, float | None]
    allowed_export_w: float
    """What the site may feed in (inf: no limit)."""
    spare_w: float
    """What the capped inverters are assumed to be able to give on top."""
    fallback_w: dict[str, float | None]
    """The cap each inverter falls back to with no gateway (None: no cap)."""
    reasons: tuple[str, ...] = ()


@dataclass
class PvCurtailment:
    """The PV caps, with the memory of the last ones and the last outputs."""

    units: tuple[PvUnit, ...]
    export_limit_w: float = math.inf
    """`grid.export_limit_kw` in W (inf: unset)."""
    caps_w: dict[str, float | None] = field(default_factory=dict)
    _produced: dict[str, float] = field(default_factory=dict, repr=False)

    @property
    def peak_w(self) -> float:
        """The installed PV power."""
        return sum(unit.peak_w for unit in self.units)

    def allowed_export_w(self, feed_in_percent: float | None) -> float:
        """What the site may feed in now, W (inf: no limit)."""
        allowed = self.export_limit_w
        if feed_in_percent is not None and feed_in_percent < 100.0:
            allowed = min(allowed, max(feed_in_percent, 0.0) / 100.0 * self.peak_w)
        return allowed

    def decide(
        self,
        *,
        grid_import_w: float | None,
        pv_w: Mapping[str, float | None],
        feed_in_percent: float | None = None,
        battery_change_w: float = 0.0,
    ) -> CurtailDecision:
        """The caps for this cycle. `pv_w`: each inverter's output (None: not read this
        cycle, its last output counts); `battery_change_w`: how much more the battery will
        charge (or less discharge) under this cycle's command than it did when metered."""
        for unit_id, watts in pv_w.items():
            if watts is not None:
                self._produced[unit_id] = watts
        allowed = self.allowed_export_w(feed_in_percent)
        fallback = fallback_caps_w(self.units, allowed)
        capped = [unit for unit in self.units if unit.curtailable]
        if not capped or math.isinf(allowed):
            self.caps_w = {unit.id: None for unit in capped}
            return CurtailDecision(dict(self.caps_w), allowed, 0.0, fallback)
        why = f"feed-in at most {allowed / 1000:.1f} kW"
        fixed = sum(self._produced.get(u.id, 0.0) for u in self.units if not u.curtailable)
        peak = sum(unit.peak_w for unit in capped)
        if grid_import_w is None:  # what the site uses is not known: as if nothing
            room = max(0.0, allowed - fixed)
            self.caps_w = {unit.id: room * unit.peak_w / peak for unit in capped}
            reason = f"{why}; no fresh grid meter: PV capped at {room / 1000:.1f} kW"
            return CurtailDecision(dict(self.caps_w), allowed, 0.0, fallback, (reason,))
        produced = sum(self._produced.get(unit.id, 0.0) for unit in self.units)
        use = grid_import_w + produced + battery_change_w
        room = max(0.0, use + allowed - fixed)
        if room >= peak:
            self.caps_w = {unit.id: None for unit in capped}
            not_capped = (f"{why}: PV not capped",)
            return CurtailDecision(dict(self.caps_w), allowed, 0.0, fallback, not_capped)
        spare = 0.0
        caps: dict[str, float | None] = {}
        for unit in capped:
            cap = room * unit.peak_w / peak
            caps[unit.id] = cap
            if self._produced.get(unit.id, 0.0) >= cap - AT_CAP_SHARE * unit.peak_w:
                spare += min(unit.peak_w - cap, PROBE_SHARE * unit.peak_w)
        self.caps_w = caps
        reason = f"{why}, the site uses {use / 1000:.1f} kW: PV capped at {room / 1000:.1f} kW"
        return CurtailDecision(dict(caps), allowed, spare, fallback, (reason,))


def fallback_caps_w(units: Sequence[PvUnit], export_limit_w: float) -> dict[str, float | None]:
    """The cap each curtailable inverter falls back to when the gateway is silent: what
    holds `export_limit_w` (what the site may feed in) even if the site used nothing and
    the uncappable inverters gave their peak; None (no cap) without an export limit."""
    capped = [unit for unit in units if unit.curtailable]
    if math.isinf(export_limit_w) or not capped:
        return {unit.id: None for unit in capped}
    fixed = sum(unit.peak_w for unit in units if not unit.curtailable)
    room = max(0.0, export_limit_w - fixed)
    peak = sum(unit.peak_w for unit in capped)
    return {unit.id: room * unit.peak_w / peak for unit in capped}


def feed_in_percent_of(
    values: Mapping[Quantity, float | None], rule: Mapping[Quantity, float]
) -> float | None:
    """The feed-in cap the control box's contacts stand for: the lowest percentage of a
    closed contact (W3 0 % before S2 30 % before S1 60 %), 100 with none closed; None when
    a contact was not read."""
    percent = 100.0
    for name, share in rule.items():
        closed = values.get(name)
        if closed is None:
            return None
        if closed:
            percent = min(percent, share)
    return percent
