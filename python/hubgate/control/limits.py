"""Limits from every source, held as leases, with an audit log.

A limit applies to a target: the grid connection (`SITE`), a node id, or a
connector (`"charger-id#1"`). Each source (site file, Modbus server write,
API, grid operator, CSMS, fleet, schedule) holds at most one lease per target; a new write
from the same source replaces it. The limit in force is the most restrictive
of the active leases: safety first, whoever asks for less wins. Leases with
an expiry lapse by themselves, so a controller that dies cannot leave a stale
limit behind. Time is an input (`now`, monotonic seconds); the audit log also
keeps the wall-clock time for people.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from hubgate.config.model import SiteConfig

SITE = "site"
"""The target name of the grid connection."""


def connector_target(charger_id: str, connector: int) -> str:
    """The target name of a charger's connector: `charger-id#n` (#0: the whole charger)."""
    return f"{charger_id}#{connector}"


class LimitSource(StrEnum):
    """Where a limit comes from."""

    CONFIG = "config"
    MODBUS_SERVER = "modbus-server"
    API = "api"
    GRID_OPERATOR = "grid-operator"
    CSMS = "csms"
    FLEET = "fleet"
    SCHEDULE = "schedule"


@dataclass(frozen=True)
class Limit:
    """A per-phase current limit (A) and/or a power limit (kW); None means no limit."""

    phase_a: tuple[float, float, float] | None = None
    power_kw: float | None = None

    def __post_init__(self) -> None:
        if self.phase_a is not None and any(not v >= 0 for v in self.phase_a):
            raise ValueError(f"phase limits must be 0 A or more, got {self.phase_a}")
        if self.power_kw is not None and not self.power_kw >= 0:
            raise ValueError(f"power limit must be 0 kW or more, got {self.power_kw}")

    def tighten(self, other: Limit) -> Limit:
        """The most restrictive combination of both limits."""
        phase = self.phase_a
        if other.phase_a is not None:
            phase = (
                other.phase_a
                if phase is None
                else (
                    min(phase[0], other.phase_a[0]),
                    min(phase[1], other.phase_a[1]),
                    min(phase[2], other.phase_a[2]),
                )
            )
        power = self.power_kw
        if other.power_kw is not None:
            power = other.power_kw if power is None else min(power, other.power_kw)
        return Limit(phase, power)


NO_LIMIT = Limit()


@dataclass(frozen=True)
class Lease:
    """A limit set by one source on one target, until `expires_at` (None: permanent)."""

    target: str
    source: LimitSource
    limit: Limit
    set_at: float
    expires_at: float | None
    origin: str

    def active(self, now: float) -> bool:
        """Whether the lease is still in force at `now`."""
        return self.expires_at is None or now < self.expires_at


class AuditAction(StrEnum):
    """What happened to a lease."""

    SET = "set"
    CLEARED = "cleared"
    EXPIRED = "expired"


@dataclass(frozen=True)
class AuditEntry:
    """One change of a limit, with its source, origin and time."""

    at: float
    wall_time: float
    action: AuditAction
    target: str
    source: LimitSource
    limit: Limit
    origin: str
    expires_at: float | None


@dataclass(frozen=True)
class LimitInForce:
    """The effective limit on a target and the sources that bind it."""

    limit: Limit
    sources: tuple[LimitSource, ...]

    def within(self, cap: Limit | None) -> LimitInForce:
        """This limit held to `cap`, the site file's own limit on the target (`site_caps`):
        a lease asking for more than the site file allows is not what is in force. `config`
        joins the sources when the cap is what binds."""
        if cap is None:
            return self
        limit = self.limit.tighten(cap)
        if limit == self.limit and self.sources:
            return self
        return LimitInForce(limit, tuple(sorted({*self.sources, LimitSource.CONFIG})))


def site_caps(site: SiteConfig) -> dict[str, Limit]:
    """The site file's own limit on each target: the grid connection's phase current and
    power limits less the safety margin (`Grid.usable_phase_a`, `usable_power_w`), each
    node's limits, each connector's maximum current."""
    grid = site.grid
    power_w = grid.usable_power_w
    caps = {SITE: Limit(grid.usable_phase_a, None if math.isinf(power_w) else power_w / 1000)}
    for node in site.nodes:
        caps[node.id] = Limit(node.phase_current_limit_a, node.power_limit_kw)
    for charger in site.chargers:
        for connector in charger.connectors:
            amps = connector.max_current_a
            caps[connector_target(charger.id, connector.id)] = Limit((amps, amps, amps))
    return caps


LimitListener = Callable[[AuditEntry, Limit | None], None]
"""Told of every change with the limit the same source held on the target before."""


@dataclass
class LimitBook:
    """Every lease on every target, and the audit log of their changes."""

    audit_size: int = 10_000
    wall_clock: Callable[[], float] = time.time
    listeners: list[LimitListener] = field(default_factory=list)
    """Called with each audit entry as it is made (the operator's event log)."""
    _leases: dict[tuple[str, LimitSource], Lease] = field(default_factory=dict)
    _audit: deque[AuditEntry] = field(init=False)

    def __post_init__(self) -> None:
        self._audit = deque(maxlen=self.audit_size)

    def _log(
        self, action: AuditAction, lease: Lease, at: float, previous: Limit | None = None
    ) -> None:
        entry = AuditEntry(
            at=at,
            wall_time=self.wall_clock(),
            action=action,
            target=lease.target,
            source=lease.source,
            limit=lease.limit,
            origin=lease.origin,
            expires_at=lease.expires_at,
        )
        self._audit.append(entry)
        for listener in self.listeners:
            listener(entry, previous)

    def set(
        self,
        target: str,
        source: LimitSource,
        limit: Limit,
        *,
        now: float,
        lease_s: float | None,
        origin: str,
    ) -> Lease:
        """Set (or replace) the lease of `source` on `target`; `lease_s=None` is permanent."""
        if lease_s is not None and not lease_s > 0:
            raise ValueError(f"lease_s must be above 0 s, got {lease_s}")
        lease = Lease(
            target, source, limit, now, None if lease_s is None else now + lease_s, origin
        )
        before = self._leases.get((target, source))
        self._leases[(target, source)] = lease
        self._log(AuditAction.SET, lease, now, None if before is None else before.limit)
        return lease

    def clear(self, target: str, source: LimitSource, *, now: float, origin: str) -> bool:
        """Remove the lease of `source` on `target`; False when there was none."""
        lease = self._leases.pop((target, source), None)
        if lease is None:
            return False
        cleared = Lease(target, source, NO_LIMIT, now, None, origin)
        self._log(AuditAction.CLEARED, cleared, now, lease.limit)
        return True

    def expire(self, now: float) -> list[Lease]:
        """Drop every lease that has run out at `now`, logging each."""
        lapsed = [lease for lease in self._leases.values() if not lease.active(now)]
        for lease in lapsed:
            del self._leases[(lease.target, lease.source)]
            self._log(AuditAction.EXPIRED, lease, now, lease.limit)
        return lapsed

    def in_force(self, target: str, now: float) -> LimitInForce:
        """The most restrictive active limit on `target` (expiring lapsed leases first)."""
        self.expire(now)
        limit = NO_LIMIT
        sources: list[LimitSource] = []
        for lease in self._leases.values():
            if lease.target == target:
                limit = limit.tighten(lease.limit)
                sources.append(lease.source)
        return LimitInForce(limit, tuple(sorted(sources)))

    def lease(self, target: str, source: LimitSource) -> Lease | None:
        """The lease of `source` on `target`, if it holds one (run `expire` first)."""
        return self._leases.get((target, source))

    def leases(self) -> Iterator[Lease]:
        """The leases currently held (lapsed ones included until `expire` runs)."""
        return iter(list(self._leases.values()))

    def audit(self, last: int | None = None) -> list[AuditEntry]:
        """The audit log, oldest first; only the `last` entries when given."""
        entries = list(self._audit)
        return entries if last is None else entries[-last:]


def grid_operator_limit_kw(percent: float, connection_kw: float) -> float:
    """The grid operator's limit as power: `percent` of the connection's power (the §14a
    minimum of the controllable devices is applied in the allocation input,
    `control.paragraph_14a`)."""
    if not 0 <= percent <= 100:
        raise ValueError(f"grid-operator limit must be 0-100 %, got {percent}")
    return connection_kw * percent / 100
