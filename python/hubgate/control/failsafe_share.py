"""The failsafe current each connector is configured with, shared out like a budget, sans-IO.

A charger falls back to its failsafe current when its lease lapses (hubgate gone, the link
lost): every cycle `FailsafeShare.share` gives each connector the site's `failsafe_current_a`
where every node on its path has room for it under its limit in force, less where not
(the Rust core's `hubgate_core::failsafe`, `ConnectorPaths.share_failsafe`). A charger that
falls back to a current of its own whatever it is told (`fixed`, at most the connector's
maximum; `fix` when its device's is read) is counted at that first.

The chargers take their new failsafes one by one, in any order, and hubgate may stop
between two: so each counts at what it may fall back to now (`Verification.fallback_a`: a
decrease at its old value until verified, an increase asked for from the try on), and an
increase is granted only where there is room for it beside them (else 0 until there is): it
waits for the decreases it needs room from, a decrease never waits.

At start a meter's node keeps its degraded budget until the meter has been fresh for its
recovery time; the failsafe room does not wait for that (`starting`): it counts the
meter's reading from the first one, and a connector below a meter not read yet waits for
it a while before its failsafe is configured (`waiting`). So each charger is configured
once with the share the site has room for, not with the degraded share's (0 A for many)
and again seconds later.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Mapping, Sequence

from hubgate.config.model import Control
from hubgate.control.allocation import ConnectorKey
from hubgate.control.decisions import Phases3
from hubgate.control.failsafe import MeterHealth
from hubgate.control.site_model import SiteModel


class FailsafeShare:
    """Per connector, the failsafe current to configure (`failsafe_a`)."""

    def __init__(
        self,
        model: SiteModel,
        control: Control,
        fixed: Mapping[ConnectorKey, float] | None = None,
    ) -> None:
        """`control`: the site's failsafe current, and its meters' stale time: how long after
        the first cycle a meter not read yet is waited for (`starting`); `fixed`: what a
        charger falls back to whatever it is told, by connector."""
        self.model = model
        self.failsafe_current_a = failsafe_current_a = control.failsafe_current_a
        self.wait_s = control.meter_stale_s
        self._first_at: float | None = None
        self._started: set[int] = set()
        """The metered nodes whose meter's start is over: trusted or lost once."""
        self._unread: set[int] = set()
        """This cycle, the metered nodes whose meter was not read yet (`starting`)."""
        self.waiting: frozenset[int] = frozenset()
        """The connectors whose failsafe waits for a meter on their path (`starting`)."""
        connectors = model.connectors
        fixed = fixed or {}
        self.fixed_a = array("d", [math.nan] * len(connectors))
        for index, connector in enumerate(connectors):
            if connector.key in fixed:
                self.fix(index, fixed[connector.key])
        """Per connector, its own fallback current (NaN: it takes the share it is told)."""
        self.failsafe_a: Sequence[float] = [failsafe_current_a] * len(connectors)
        """The failsafe current each connector is to be configured with (`share`)."""

    def fix(self, index: int, current_a: float) -> float:
        """The connector at `index` falls back to `current_a` whatever it is told (its
        device's, as read): counted so from now, at most its maximum, which is returned."""
        self.fixed_a[index] = min(current_a, self.model.connectors[index].max_current_a)
        return self.fixed_a[index]

    def starting(self, node: int, health: MeterHealth, now: float) -> bool:
        """Whether the meter at `node` (its `health` at `now`; one not trusted) is starting:
        read, not trusted yet, and neither trusted nor lost before. Its reading then counts in
        the failsafe room; its node's budget keeps its degraded share until it is trusted.
        Not read yet, until `wait_s` after the first cycle: the connectors below it wait."""
        if self._first_at is None:
            self._first_at = now
        if node in self._started:
            return False
        if health is MeterHealth.NEVER_SEEN:
            if now - self._first_at < self.wait_s:
                self._unread.add(node)
            return False
        if health is not MeterHealth.RECOVERING:
            self._started.add(node)
            return False
        return True

    def share(
        self,
        own: array[float],
        reserved: Sequence[Sequence[float]],
        session: bytearray,
        holds: bytearray,
        may_hold_a: array[float],
        limit_a: Callable[[int], Phases3],
    ) -> Sequence[float]:
        """Share the failsafe current out under every node's limit in force (`limit_a(node)`)
        less its `own` base load (three per node; not its leases': the limit has them), EVs
        reserved at their maximum aside (`reserved`, per node); `session`, `holds`: per
        connector, an EV in, configured with the failsafe current now; `may_hold_a`: what it
        may fall back to now (`Verification.fallback_a`): an increase only where there is
        room for it beside what the others may fall back to now."""
        room = array("d", own)
        for node in range(len(self.model.node_ids)):
            limit = limit_a(node)
            for p in range(3):
                at = 3 * node + p
                room[at] = limit[p] - max(own[at] - reserved[node][p], 0.0)
        self.failsafe_a = self.model.paths.share_failsafe(
            self.fixed_a, session, holds, may_hold_a, room, self.failsafe_current_a
        )
        unread, self._unread = self._unread, set()
        ancestors = self.model.ancestors
        self.waiting = frozenset(
            i
            for i, connector in enumerate(self.model.connectors if unread else ())
            if unread.intersection(ancestors[connector.node])
        )
        return self.failsafe_a
