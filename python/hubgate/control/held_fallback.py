"""A charger's fallback as its device shows it, for the planner (`CyclePlanner`), sans-IO:
the fallback current its device holds whatever hubgate asks (Alfen's safe current, 1212,
read with each verification), counted in the failsafe budget as read, and its limit validity
(Alfen 1208) read as 0 while commanded, a lapsed limit; each with the operator's events."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hubgate.devices.model import HeldCurrent, Reading
from hubgate.profiles.model import Quantity
from hubgate.state import EventCategory, EventLevel

if TYPE_CHECKING:
    from hubgate.control.plan import CyclePlanner


def check_validity(planner: CyclePlanner, index: int, reading: Reading) -> None:
    """A charger whose limit validity (Alfen 1208, the seconds left before it falls
    back) reads 0 while hubgate commands it has let its limit lapse: it runs on its
    fallback current (an unconfigured station reads 0 too). Not "valid": its failsafe
    settings are verified again and its setpoint re-sent this cycle, with an event
    once until a validity above 0 is read."""
    validity = reading.values.get(Quantity.LIMIT_VALIDITY)
    if validity is None or Quantity.LIMIT_VALIDITY in reading.older:
        return  # not read this cycle: carried from the last full read
    runtime = planner.connectors[index]
    if validity > 0 or runtime.sent_a is None:
        runtime.lapsed = False
        return
    runtime.watch.needs_verification = True
    if runtime.lapsed:
        return
    runtime.lapsed = True
    planner.events.emit(
        EventLevel.WARNING,
        planner.model.connectors[index].name,
        "its limit validity reads 0 s while hubgate commands it: the limit lapsed, it "
        f"runs on its fallback current ({planner.fallback_a(index):g} A); verified and sent "
        "again (if this repeats, its validity time on the device is shorter than the "
        "heartbeat)",
        category=EventCategory.CHARGER,
    )


def count_held(planner: CyclePlanner, index: int, held: HeldCurrent) -> None:
    """Count the fallback current the device of the connector at `index` holds, as read,
    in the failsafe budget; a warning when it is new and above the site's failsafe
    current (hubgate cannot lower it: the installer must, where `held.where` says), and
    an event when one read above it before is back within it (the warning is over)."""
    runtime, name = planner.connectors[index], planner.model.connectors[index].name
    failsafe = planner.site.control.failsafe_current_a
    before = runtime.failsafe_a if runtime.fallback_held else None
    counted = planner.failsafes.fix(index, held.current_a)
    if before is not None and before > failsafe >= counted:
        planner.events.emit(
            EventLevel.INFO,
            name,
            f"falls back to {counted:g} A now ({held.where}), within the site's failsafe "
            f"current {failsafe:g} A: counted so in the failsafe budget",
            category=EventCategory.CHARGER,
        )
    if held.current_a > failsafe and runtime.failsafe_a != counted:
        planner.events.emit(
            EventLevel.WARNING,
            name,
            f"falls back to {held.current_a:g} A whatever hubgate asks ({held.where}), "
            f"above the site's failsafe current {failsafe:g} A: counted at "
            f"{counted:g} A in the failsafe budget; set it to {failsafe:g} A or less "
            "on the device",
            category=EventCategory.CHARGER,
        )
    runtime.failsafe_a, runtime.fallback_held = counted, True
