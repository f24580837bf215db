"""The charge-point registry: who may connect, and what each station last told us.

State lives per identity and survives reconnects. Connectors are keyed by the
1.6 connectorId or the 2.x evseId (0 is the station as a whole).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

import trio

from hubgate.config.model import SiteConfig
from hubgate.devices.model import ChargingNeeds
from hubgate.ocpp.capabilities import ClockEstimate
from hubgate.ocpp.errors import ErrorCode, RpcError
from hubgate.ocpp.link_stats import OcppLinkStats
from hubgate.ocpp.meter_values import Measurement
from hubgate.ocpp.session import OcppSession
from hubgate.ocpp.versions import OcppVersion

TRANSACTIONS_KEPT = 64
"""Transactions a station's state keeps (the open ones and the latest finished)."""


@dataclass(frozen=True)
class Admission:
    """A charger allowed to connect (from the site file)."""

    identity: str
    charger_id: str
    versions: tuple[OcppVersion, ...]
    password: str | None = None
    connectors: tuple[int, ...] | None = None
    """Its connector (1.6) or EVSE (2.x) ids; 0, the station itself, is always valid. None:
    any id (a charger the site file does not describe)."""


@dataclass
class Transaction:
    """A charging transaction as the station reported it."""

    transaction_id: str
    connector_id: int
    id_token: str | None
    started: datetime | None
    meter_start_wh: float | None = None
    stopped: datetime | None = None
    meter_stop_wh: float | None = None
    stop_reason: str | None = None
    seen_at: float | None = None
    """When hubgate first heard of it (Trio clock): after its start, whatever its clock."""


@dataclass
class ConnectorState:
    """One connector (1.6) or EVSE (2.x)."""

    status: str = "Unknown"
    error_code: str = "NoError"
    measurement: Measurement = field(default_factory=Measurement)
    measured_at: float | None = None
    """When the measurement last changed (Trio clock), for staleness checks."""
    transaction: Transaction | None = None
    charging_state: str | None = None
    """2.x: the transaction's chargingState (Charging, SuspendedEV, EVConnected, ...)."""
    state_at: float | None = None
    """When the status, transaction or charging state last changed (Trio clock): a start
    is known from it before the first MeterValues show the current."""
    charging_needs: ChargingNeeds | None = None
    """2.x: the EV's last NotifyEVChargingNeeds in this transaction."""

    def measure(self, measurement: Measurement) -> None:
        """Store a new measurement, stamped with the time it arrived."""
        self.measurement = measurement
        self.measured_at = trio.current_time()

    def report(self, *, status: str | None = None, charging_state: str | None = None) -> None:
        """Take a status or a 2.x charging state; `state_at` moves when either changes."""
        changed = False
        if status is not None and status != self.status:
            self.status, changed = status, True
        if charging_state is not None and charging_state != self.charging_state:
            self.charging_state, changed = charging_state, True
        if changed:
            self.state_at = trio.current_time()

    def run(self, transaction: Transaction | None) -> None:
        """Take the connector's transaction (None: it ended); `state_at` moves on a change."""
        if transaction is not self.transaction:
            self.transaction = transaction
            if transaction is None:
                self.charging_state = None
                self.charging_needs = None
            self.state_at = trio.current_time()


@dataclass
class BootInfo:
    """What the station said about itself in BootNotification."""

    vendor: str
    model: str
    serial_number: str | None = None
    firmware_version: str | None = None


@dataclass
class Station:
    """A charge point's live state."""

    admission: Admission
    version: OcppVersion | None = None
    session: OcppSession | None = None
    boot: BootInfo | None = None
    last_heartbeat: datetime | None = None
    clock: ClockEstimate = field(default_factory=ClockEstimate)
    """Its clock against ours, from the timestamps of what it sends."""
    booted: trio.Event = field(default_factory=trio.Event)
    """Set by its BootNotification on the current connection."""
    connections: int = 0
    boots: int = 0
    """BootNotifications seen since hubgate started."""
    connected_at: float | None = None
    """When the current connection began (Trio clock)."""
    boot_delay_s: float | None = None
    """How long after the current connection began its BootNotification came."""
    link: OcppLinkStats = field(default_factory=OcppLinkStats)
    """Its frames and our calls to it, across its connections."""
    non_finite_samples: int = 0
    """Meter samples it sent whose value was not a finite number once scaled (skipped)."""

    def booting(self) -> None:
        """A BootNotification arrived (its clock may have been set anew)."""
        self.boots += 1
        self.clock.restart()
        if self.boot_delay_s is None and self.connected_at is not None:
            self.boot_delay_s = trio.current_time() - self.connected_at

    connectors: dict[int, ConnectorState] = field(default_factory=dict)
    transactions: dict[str, Transaction] = field(default_factory=dict)

    @property
    def identity(self) -> str:
        """The charge point's OCPP identity."""
        return self.admission.identity

    def connector(self, connector_id: int) -> ConnectorState:
        """The connector's state, created on first mention; `RpcError` (a CallError for the
        charger) for an id the site file does not give it."""
        state = self.connectors.get(connector_id)
        if state is not None:
            return state
        known = self.admission.connectors
        if known is not None and connector_id != 0 and connector_id not in known:
            valid = ", ".join(str(n) for n in (0, *known))
            raise RpcError(
                ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
                f"connector/EVSE {connector_id} is not one of this charger's ({valid})",
            )
        return self.connectors.setdefault(connector_id, ConnectorState())

    def remember(self, transaction: Transaction) -> None:
        """Keep a transaction; beyond `TRANSACTIONS_KEPT` the oldest finished ones are
        forgotten first, then the oldest open ones no connector runs any more."""
        self.transactions[transaction.transaction_id] = transaction
        excess = len(self.transactions) - TRANSACTIONS_KEPT
        if excess <= 0:
            return
        running = {id(c.transaction) for c in self.connectors.values()}
        finished = [t for t in self.transactions.values() if t.stopped is not None]
        orphaned = [
            t
            for t in self.transactions.values()
            if t.stopped is None and id(t) not in running and t is not transaction
        ]
        for old in (finished + orphaned)[:excess]:
            del self.transactions[old.transaction_id]


class StationRegistry:
    """Allowed identities and their stations."""

    def __init__(self, admissions: Iterable[Admission]) -> None:
        self._stations = {a.identity: Station(a) for a in admissions}

    @classmethod
    def from_site(cls, site: SiteConfig) -> StationRegistry:
        """The OCPP chargers of a site file."""
        return cls(
            Admission(
                c.ocpp.identity,
                c.id,
                c.ocpp.versions,
                c.ocpp.password,
                tuple(k.id for k in c.connectors),
            )
            for c in site.chargers
            if c.ocpp is not None
        )

    def get(self, identity: str) -> Station | None:
        """The station of an allowed identity, else None."""
        return self._stations.get(identity)

    def __iter__(self) -> Iterator[Station]:
        return iter(self._stations.values())

    def connected(self, identity: str, version: OcppVersion, session: OcppSession) -> Station:
        """Record a new session; it replaces any earlier one."""
        station = self._stations[identity]
        station.version = version
        station.session = session
        station.booted = trio.Event()
        station.connections += 1
        station.connected_at, station.boot_delay_s = trio.current_time(), None
        return station

    def disconnected(self, identity: str, session: OcppSession) -> None:
        """Forget `session` if it is still the station's current one."""
        station = self._stations[identity]
        if station.session is session:
            station.session = None
