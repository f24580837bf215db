"""Whether the planner may count a charger's reading, and what it falls back to, sans-IO.

A connector's reading counts once its charger's failsafe settings are configured and
verified (or inherited from the leader before) and while it follows its limits and answers;
until then it is reserved: unreachable at what it falls back to (`fallback_a`: what it was
verified with, or a larger one asked for since: a try cut short may still reach it), not
verified or not following at its maximum (`reservation`). `Verification` keeps that per connector
for the `CyclePlanner`: the verification outcomes (`configured`), the chargers' limit checks
(`checked`), a new epoch (`take_over`) and the fallbacks devices hold (`held`,
`control.held_fallback`), with the operator's events.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from hubgate.control.connector_runtime import ConnectorRuntime
from hubgate.control.failsafe_share import FailsafeShare
from hubgate.control.held_fallback import HeldFallbacks
from hubgate.control.site_model import SiteModel
from hubgate.devices.model import HeldCurrent, LimitCheck
from hubgate.records.events import Burst, EventLog
from hubgate.state import EventCategory, EventLevel


class Verification:
    """Per connector of `model` (by index; `connectors`: the planner's records of them),
    whether its reading counts and what it falls back to (see the module docstring)."""

    def __init__(
        self,
        model: SiteModel,
        connectors: Sequence[ConnectorRuntime],
        failsafes: FailsafeShare,
        events: EventLog,
        paths: Mapping[str, tuple[str, ...]],
    ) -> None:
        """`failsafes`: the failsafe current each is to be configured with; `paths`: each
        connector's node and the nodes above it, by name (for the events' bursts)."""
        self.model = model
        self.connectors = connectors
        self.failsafes = failsafes
        self.events = events
        self.paths = paths
        self._index = {info.name: i for i, info in enumerate(model.connectors)}
        self.held = HeldFallbacks(model, connectors, failsafes, self.fallback_a, events, paths)
        """The fallback currents devices hold whatever they are told, and lapsed limits."""
        self.asked_a = [0.0] * len(connectors)
        """Per connector, the most failsafe current asked for since its last verification
        (0: none): a try cut short or refused may have reached the charger (an OCPP
        exchange goes on past the command deadline), so it may fall back to that already."""

    def asking(self, index: int, failsafe_a: float) -> None:
        """The connector at `index` is to be configured with `failsafe_a` (a try starts)."""
        self.asked_a[index] = max(self.asked_a[index], failsafe_a)

    def fallback_a(self, index: int) -> float:
        """What the connector at `index` falls back to when its lease lapses: the failsafe
        current it was configured with or its device holds (`ConnectorRuntime.failsafe_a`),
        or one asked for since if larger (`asked_a`); before that, inherited, the one passed
        on with it or the one this gateway would configure or asked for if larger (a
        configuration it began may have reached it); else its fixed one, else the site's
        failsafe current (the most a previous leader configured)."""
        runtime, asked = self.connectors[index], self.asked_a[index]
        if runtime.failsafe_a is not None:
            return max(runtime.failsafe_a, asked)
        if runtime.watch.inherited_from is not None:
            inherited = runtime.watch.inherited_failsafe_a
            return max(inherited, self.failsafes.failsafe_a[index], asked)
        fixed = self.failsafes.fixed_a[index]
        return self.failsafes.failsafe_current_a if math.isnan(fixed) else fixed

    def reservation(self, index: int, now: float) -> tuple[float, str] | None:
        """The current a connector is reserved at instead of its reading, and why; None
        while its reading counts."""
        runtime = self.connectors[index]
        watch = runtime.watch
        if (
            not watch.reachable(now)  # (then the fallback, for what it is assumed at)
            and (assumed := watch.assumed_draw_a(now, self.fallback_a(index))) is not None
        ):
            return assumed, "unreachable"
        if runtime.failsafe_unverified or self._never_verified(index):
            return self.model.connectors[index].max_current_a, "failsafe not verified"
        if runtime.limit_check.following is False:
            return self.model.connectors[index].max_current_a, "not following its limit"
        return None

    def _never_verified(self, index: int) -> bool:
        """Whether the connector at `index` is an OCPP charger this gateway has neither
        verified nor inherited: its boot and base profile outlast a cycle, meanwhile it
        offers its EV what it likes (a Modbus charger is verified within the cycle)."""
        runtime = self.connectors[index]
        watch = runtime.watch
        return (
            self.model.connectors[index].protocol == "ocpp"
            and watch.needs_verification
            and runtime.failsafe_a is None
            and watch.inherited_from is None
        )

    def checked(self, checks: Mapping[str, LimitCheck]) -> None:
        """Take the chargers' limit checks by connector name (an event when one changes):
        a charger not following its limits is reserved at its maximum from this cycle."""
        for name, check in checks.items():
            runtime = self.connectors[self._index[name]]
            if check == runtime.limit_check:  # most cycles: nothing new
                continue
            before = runtime.limit_check.following
            if check.following is False and before is not False:
                self.events.emit(
                    EventLevel.ALARM,
                    name,
                    f"not following its limit, reserved at its maximum: {check.evidence}",
                    category=EventCategory.CHARGER,
                )
            elif check.following and before is False:
                self.events.emit(
                    EventLevel.INFO,
                    name,
                    f"follows its limit again: {check.evidence}",
                    category=EventCategory.CHARGER,
                )
            runtime.limit_check = check

    def configured(
        self,
        index: int,
        ok: bool,
        held: HeldCurrent | None = None,
        failsafe_a: float | None = None,
    ) -> None:
        """The failsafe settings of the connector at `index` were configured and verified
        (`ok`), or could not be: it stays reserved and is retried next cycle. `held`: the
        fallback current its device holds whatever it is told, as read (`held_fallback`);
        `failsafe_a`: the failsafe current that went out (its share may have moved since
        the try began: it ends cycles later when it ran aside, `control.dispatch`), by
        default this cycle's share."""
        runtime = self.connectors[index]
        # a verified connector whose failsafe could not be changed keeps the one it has
        # (counted as such in the budget) and is asked again
        runtime.failsafe_unverified = not ok and (
            runtime.failsafe_a is None or runtime.watch.needs_verification
        )
        if ok:
            self.asked_a[index] = 0.0
            if held is None:
                runtime.failsafe_a = (
                    self.failsafes.failsafe_a[index] if failsafe_a is None else failsafe_a
                )
            else:
                self.held.count(index, held)
            runtime.watch.verified()
            name = self.model.connectors[index].name
            self.events.emit(
                EventLevel.INFO,
                name,
                "failsafe verified",
                category=EventCategory.CHARGER,
                burst=Burst(
                    "failsafe-verified", "{n} connectors: failsafe verified", self.paths[name]
                ),
            )

    def take_over(self) -> None:
        """A new epoch: as after a restart, every charger's failsafe settings are configured
        and verified again before its first setpoint, and every setpoint is sent. The failsafe
        currents and setpoints this gateway sent in an earlier epoch no longer count (another
        leader may have sent others since); a fallback its device holds does, as last read."""
        for runtime, held in zip(self.connectors, self.held.held, strict=True):
            runtime.watch.needs_verification, runtime.watch.last_command_a = True, None
            runtime.sent_a, runtime.sent_phases = None, 0
            if not held:
                runtime.failsafe_a = None

    def heartbeat_due(self, index: int, now: float) -> bool:
        """Whether the connector at `index` should be sent its heartbeat: it is reachable
        and its failsafe settings are verified."""
        watch = self.connectors[index].watch
        return not watch.needs_verification and watch.reachable(now)
