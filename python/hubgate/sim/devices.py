"""The state a protocol layer exposes: chargers, meters, the grid-operator signal, the CSMS.

In-process, a controller calls these directly; later the Modbus and OCPP
simulators read and write the same state over the wire.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


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

    def offered(self, slot: int, now: float) -> float:
        """The limit the charger offers the EV at `slot` at `now`."""
        if now < self.lease_until:
            return self.setpoints.get(slot, 0.0)
        return self.failsafe_a


@dataclass
class MeterState:
    """A meter's last reading of its node, per grid phase; None once it died."""

    id: str
    node: int
    alive: bool = True
    currents_a: tuple[float, float, float] | None = None


@dataclass
class GridSignal:
    """The grid operator's limit on the connection, in percent of its configured limit."""

    percent: float = 100.0


@dataclass
class CsmsState:
    """Whether the operator's cloud CSMS is reachable."""

    online: bool = True
