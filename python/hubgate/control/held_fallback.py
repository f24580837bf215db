"""A charger's fallback as its device shows it, for the planner (`CyclePlanner`), sans-IO:
the fallback current its device holds whatever hubgate asks (Alfen's safe current, 1212,
read with each verification), counted in the failsafe budget as read, and its limit validity
(Alfen 1208) read as 0 while commanded, a lapsed limit; each with the operator's events.
`HeldFallbacks` keeps both per connector."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from hubgate.control.connector_runtime import FALLBACK_REREAD_S, ConnectorRuntime
from hubgate.control.failsafe_share import FailsafeShare
from hubgate.control.site_model import SiteModel
from hubgate.devices.model import HeldCurrent, Reading
from hubgate.profiles.model import Quantity
from hubgate.records.events import Burst, EventLog
from hubgate.state import EventCategory, EventLevel

WITHIN = "{n} connectors: own fallback current read, within the site's failsafe current"
"""The merged event of connectors whose held fallback is read within the failsafe current."""


class HeldFallbacks:
    """Per connector of `model` (by index; `connectors`: the planner's records of them):
    whether its device holds its own fallback current (`held`: its `ConnectorRuntime.
    failsafe_a` is what was read, counted so in `failsafes`) and whether its limit validity
    lapsed (`lapsed`)."""

    def __init__(
        self,
        model: SiteModel,
        connectors: Sequence[ConnectorRuntime],
        failsafes: FailsafeShare,
        fallback_a: Callable[[int], float],
        events: EventLog,
        paths: Mapping[str, tuple[str, ...]],
    ) -> None:
        """`fallback_a`: what the connector at an index falls back to (`Verification.
        fallback_a`), for the events; `paths`: each connector's node and those above it."""
        self.names = [info.name for info in model.connectors]
        self.connectors = connectors
        self.failsafes = failsafes
        self.fallback_a = fallback_a
        self.events = events
        self.paths = paths
        self.held = [False] * len(connectors)
        """Its device holds its fallback current whatever it is told (Alfen's safe
        current): read again every `FALLBACK_REREAD_S` (`reread_due`)."""
        self.lapsed = [False] * len(connectors)
        """Its limit validity read 0 while commanded (`check_validity`), not above since."""

    def reread_due(self, index: int, now: float) -> bool:
        """Whether the fallback current the device of the connector at `index` holds is due
        to be read again, with its other failsafe settings."""
        tried_at = self.connectors[index].verify_tried_at
        return self.held[index] and now - tried_at >= FALLBACK_REREAD_S

    def check_validity(self, index: int, reading: Reading) -> None:
        """A charger whose limit validity (Alfen 1208, the seconds left before it falls
        back) reads 0 while hubgate commands it has let its limit lapse: it runs on its
        fallback current (an unconfigured station reads 0 too). Not "valid": its failsafe
        settings are verified again and its setpoint re-sent this cycle, with an event
        once until a validity above 0 is read."""
        validity = reading.values.get(Quantity.LIMIT_VALIDITY)
        if validity is None or Quantity.LIMIT_VALIDITY in reading.older:
            return  # not read this cycle: carried from the last full read
        runtime = self.connectors[index]
        if validity > 0 or runtime.sent_a is None:
            self.lapsed[index] = False
            return
        runtime.watch.needs_verification = True
        if self.lapsed[index]:
            return
        self.lapsed[index] = True
        self.events.emit(
            EventLevel.WARNING,
            self.names[index],
            "its limit validity reads 0 s while hubgate commands it: the limit lapsed, it "
            f"runs on its fallback current ({self.fallback_a(index):g} A); verified and sent "
            "again (if this repeats, its validity time on the device is shorter than the "
            "heartbeat)",
            category=EventCategory.CHARGER,
        )

    def count(self, index: int, held: HeldCurrent) -> None:
        """Count the fallback current the device of the connector at `index` holds, as read,
        in the failsafe budget; a warning when it is new and above the site's failsafe
        current (hubgate cannot lower it: the installer must, where `held.where` says), and
        an event when it is first read within it, or one read above it before is back within
        it (the warning is over)."""
        runtime, name = self.connectors[index], self.names[index]
        failsafe = self.failsafes.failsafe_current_a
        before = runtime.failsafe_a if self.held[index] else None
        counted = self.failsafes.fix(index, held.current_a)
        if counted <= failsafe and (before is None or before > failsafe):
            how = "on its own" if before is None else "now"
            self.events.emit(
                EventLevel.INFO,
                name,
                f"falls back to {counted:g} A {how} ({held.where}), within the site's failsafe "
                f"current {failsafe:g} A: counted so in the failsafe budget",
                category=EventCategory.CHARGER,
                burst=Burst("held-fallback", WITHIN, self.paths[name]) if before is None else None,
            )
        if held.current_a > failsafe and runtime.failsafe_a != counted:
            self.events.emit(
                EventLevel.WARNING,
                name,
                f"falls back to {held.current_a:g} A whatever hubgate asks ({held.where}), "
                f"above the site's failsafe current {failsafe:g} A: counted at "
                f"{counted:g} A in the failsafe budget; set it to {failsafe:g} A or less "
                "on the device",
                category=EventCategory.CHARGER,
            )
        runtime.failsafe_a, self.held[index] = counted, True
