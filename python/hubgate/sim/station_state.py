"""What a simulated OCPP station keeps of its connectors, and what it needs of the site.

`StationEnv` is the narrow view of the simulated site a `Station` works through
(`WireSite` implements it); `ConnectorState` is one connector or EVSE as the station
sees it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from hubgate.config.model import DcConnector
from hubgate.sim.ev import Ev
from hubgate.sim.writers import Connection


class StationEnv(Protocol):
    """What a station needs of the simulated site it is part of (`WireSite`)."""

    @property
    def origin(self) -> datetime:
        """Wall-clock time at simulated t = 0."""

    @property
    def voltage_v(self) -> float:
        """The site's phase voltage."""

    def clock(self) -> float:
        """Simulated seconds."""

    def online(self, charger_id: str) -> bool:
        """Whether the scenario has the charger on the network."""

    def ev(self, slot: int) -> Ev | None:
        """The EV plugged in at a connector slot."""

    def phases(self, slot: int) -> int:
        """How many phases the EV at `slot` draws on (3 without one)."""

    def energy_wh(self, slot: int) -> float:
        """Energy delivered through the connector at `slot` since the start (Wh)."""

    def offer(self, charger_id: str, slot: int, current_a: float) -> None:
        """The connector at `slot` offers its EV `current_a` from now on."""

    def switch_phases(self, slot: int, phases: int) -> None:
        """The switchable connector at `slot` switched its EV to `phases` (1 or 3)."""

    def written(self, device: str, what: dict[str, Any], connection: Connection | None) -> None:
        """A command reached `device` over `connection` (`hubgate.sim.writers`)."""


@dataclass
class ConnectorState:
    """One connector (1.6) or EVSE (2.0.1) as the station sees it."""

    id: int
    slot: int
    max_current_a: float
    available: bool = True
    stopped: bool = False
    """Remote-stopped: no current until the EV leaves."""
    ev: object = None
    tx_id: str | None = None
    tx_start: datetime | None = None
    tx_generation: int = 0
    """Counts transaction starts; a 1.6 start not answered before a reconnect is given up."""
    numbers: dict[int, str] = field(default_factory=dict)
    """1.6: the CSMS's transaction id per start, until its StopTransaction went out."""
    seq_no: int = 0
    status: str = ""
    charging_state: str = ""
    offered_a: float = 0.0
    dc: DcConnector | None = None
    """A DC connector (its site table): W limits are DC power, a minimum, a ramp."""
    switchable: bool = False
    phases: int = 3
    """What it gives its EV, switchable between 3 and 1 when `switchable`."""
    paused_since: float | None = None
    """Since when (simulated s) it offers nothing, None while it offers current."""
    ramped_at: float = 0.0
    """When (simulated s) a DC connector's power last moved towards its limit."""


def connector_status(status: str) -> str:
    """A 1.6 status as a 2.0.1 connector status."""
    if status in ("Available", "Unavailable", ""):
        return status
    return "Occupied"
