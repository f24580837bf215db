"""The state a protocol layer exposes: chargers, meters, the grid-operator signal, the CSMS.

In-process, a controller calls these directly; later the Modbus and OCPP
simulators read and write the same state over the wire.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from hubgate.profiles.model import Profile, Quantity


@dataclass
class ChargerState:
    """A charger's link and setpoints; it falls back to `failsafe_a` when its lease runs out."""

    id: str
    slots: tuple[int, ...]
    """Indices of its connectors in the site's flat connector list."""
    lease_s: float
    failsafe_a: float
    online: bool = True
    setpoints: dict[int, float] = field(default_factory=dict)
    lease_until: float = float("-inf")
    dc_min_a: dict[int, float] = field(default_factory=dict)
    """The least each DC connector delivers (A per phase), by slot: under it, it offers
    nothing (as a station on the wire, `StationLimits.offer`)."""
    no_free_power: bool = False
    """An idle DC connector under its minimum starts no session (`Personality.no_free_power`,
    evcc-io/evcc#28493): its EV waits, and the station shows itself unavailable."""
    sessions: set[int] = field(default_factory=set)
    """Slots whose EV's session has started."""

    def write_limits(self, limits: Mapping[int, float], now: float) -> bool:
        """Set limits per connector slot and renew the lease; False while offline."""
        if not self.online:
            return False
        self.setpoints.update(limits)
        self.lease_until = now + self.lease_s
        return True

    def hold(self, slot: int, limit_a: float) -> None:
        """Offer what a device on the wire applies; the device runs its own watchdog."""
        self.setpoints[slot] = limit_a
        self.lease_until = float("inf")

    def _limit(self, slot: int, now: float) -> float:
        if now < self.lease_until:
            return self.setpoints.get(slot, 0.0)
        return self.failsafe_a

    def offered(self, slot: int, now: float) -> float:
        """The limit the charger offers the EV at `slot` at `now` (0: no session yet)."""
        limit = self._limit(slot, now)
        minimum = self.dc_min_a.get(slot, 0.0)
        if slot not in self.sessions:
            if self.no_free_power and limit < minimum:
                return 0.0
            self.sessions.add(slot)
        return 0.0 if limit < minimum else limit

    def in_session(self, slot: int) -> bool:
        """Whether the EV at `slot` has its session (a station shows it; one that has
        none yet shows itself unavailable)."""
        return slot in self.sessions


@dataclass
class MeterState:
    """A meter's last reading of its node, per grid phase; None once it died."""

    id: str
    node: int
    alive: bool = True
    currents_a: tuple[float, float, float] | None = None


@dataclass
class GridSignal:
    """The grid operator's limits: on the connection's import, in percent of its configured
    limit, and on its feed-in, in percent of the installed PV power (§9 EEG)."""

    percent: float = 100.0
    feed_in_percent: float = 100.0

    def contacts(self, profile: Profile) -> dict[Quantity, float]:
        """A control box's contacts for these limits (1.0 closed): the §14a dimming
        contact while the import limit is below 100 %; of the feed-in contacts, the one
        with the highest percentage at or below the feed-in limit (the lowest one when
        none is), none at 100 %."""
        rule = profile.grid_operator
        relays = dict(rule.feed_in_percent) if rule is not None else {}
        closed: Quantity | None = None
        if relays and self.feed_in_percent < 100.0:
            fitting = [(p, name) for name, p in relays.items() if p <= self.feed_in_percent]
            closed = max(fitting)[1] if fitting else min((p, n) for n, p in relays.items())[1]
        contacts = {name: float(name == closed) for name in relays}
        if Quantity.RELAY_DIM_14A in profile.fields:
            contacts[Quantity.RELAY_DIM_14A] = float(self.percent < 100.0)
        return contacts


@dataclass
class CsmsState:
    """Whether the operator's cloud CSMS is reachable."""

    online: bool = True
