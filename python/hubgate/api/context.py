"""Everything the API reads and writes, handed in by whoever runs it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import trio

from hubgate.api.metrics import MetricsRegistry
from hubgate.auth_limits import FailedAttempts
from hubgate.cloud.proxy import CsmsProxy
from hubgate.config.model import SiteConfig
from hubgate.config.tokens import TokenBook
from hubgate.control.commands import Commands
from hubgate.control.decisions import DecisionLog
from hubgate.control.limits import Limit, LimitBook, connector_target, site_caps
from hubgate.control.prices import PriceSeries
from hubgate.control.schedules import ScheduleBook
from hubgate.records.events import EventLog
from hubgate.state import ChargerInfo, ChargingSession, StateHub


@dataclass(frozen=True)
class ApiContext:
    """The site, its live state, limits, logs and the command sink the API serves."""

    site: SiteConfig
    hub: StateHub
    limits: LimitBook
    decisions: DecisionLog
    commands: Commands
    metrics: MetricsRegistry = field(default_factory=MetricsRegistry)
    csms: CsmsProxy | None = None
    """The CSMS proxy, with a `[csms]` (its held transactions)."""
    leader_csms: Callable[[], CsmsProxy | None] | None = None
    """With a `[cluster]` and a `[csms]`: the leader's CSMS proxy while this gateway leads,
    None while it is the standby (held transactions are decided on the leader)."""
    tokens: TokenBook | None = None
    """The id tokens that may charge, with an `[authorization]`."""
    clock: Callable[[], float] = trio.current_time
    """Monotonic time of the lease book (the control loop's clock)."""
    wall_clock: Callable[[], float] = time.time
    chargers: Callable[[], tuple[ChargerInfo, ...]] = tuple
    """The OCPP chargers: capabilities, provisioning, whether they follow their limits."""
    sessions: Callable[[], list[ChargingSession]] = list
    """The charging sessions going on, as they stand (`SessionRecorder.current`)."""
    events: EventLog = field(default_factory=EventLog)
    """The operator's event log (the control loop's)."""
    auth_failures: FailedAttempts = field(default_factory=FailedAttempts)
    schedules: ScheduleBook | None = None
    """The control loop's time-based limits (`planner.horizon.schedules`)."""
    prices: PriceSeries | None = None
    """The control loop's energy prices (`planner.horizon.prices`)."""
    """Wrong tokens per client address (10 a minute, then 429)."""

    @cached_property
    def node_ids(self) -> tuple[str, ...]:
        """The configured nodes below the grid connection."""
        return tuple(node.id for node in self.site.nodes)

    @cached_property
    def caps(self) -> dict[str, Limit]:
        """The site file's own limit per target: what is in force stays within it."""
        return site_caps(self.site)

    @cached_property
    def connector_keys(self) -> tuple[str, ...]:
        """Every configured connector as `charger-id#n`."""
        return tuple(
            connector_key(charger.id, connector.id)
            for charger in self.site.chargers
            for connector in charger.connectors
        )


def connector_key(charger: str, connector: int) -> str:
    """The key of a connector: `charger-id#n`."""
    return connector_target(charger, connector)
