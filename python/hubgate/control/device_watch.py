"""Which devices answer, and the operator events when that changes: a device lost or back
(an outage of many is one event, merged by `Burst`), a connector gone to its failsafe
current, a meter lost or trusted again. Sans-IO: time is an input."""

from __future__ import annotations

import math

from hubgate.config.model import SiteConfig
from hubgate.control.cycle import Failed, InFlight, TimedOut
from hubgate.control.failsafe import ChargerWatch
from hubgate.control.site_model import SiteModel
from hubgate.devices.model import Reading
from hubgate.profiles.model import Quantity
from hubgate.records.events import Burst, EventLog
from hubgate.state import EventCategory, EventLevel

DEVICE_LOST = "{n} devices unreachable"
DEVICE_BACK = "{n} devices reachable again"
CONNECT_GRACE_S = 15.0
"""At start, how long a device that has not answered yet may take (connections being made,
OCPP stations dialling in) before it counts as lost in the events."""
IMPLAUSIBLE_AGAIN_S = 900.0
"""A connector whose currents turn implausible again this soon after its last such event
(a register that glitches every few reads) is no new event."""


def device_paths(site: SiteConfig, model: SiteModel) -> dict[str, tuple[str, ...]]:
    """Per device name: its node and every node above it (where an event happened)."""
    node_path = {
        node_id: tuple(model.node_ids[a] for a in model.ancestors[n])
        for n, node_id in enumerate(model.node_ids)
    }
    paths = {info.name: node_path[model.node_ids[info.node]] for info in model.connectors}
    paths |= {f"meter:{m.id}": node_path[m.node] for m in site.meters}
    paths |= {f"pv:{pv.id}": node_path[pv.node] for pv in site.pv}
    if site.battery is not None:
        paths[f"battery:{site.battery.id}"] = node_path[site.battery.node]
    paths["grid-operator"] = node_path[model.node_ids[0]]
    return paths


class DeviceWatch:
    """The devices' health by name (`charger-id#n`, `meter:id`, `pv:id`, `battery:id`,
    `grid-operator`) and the events when it changes."""

    def __init__(self, events: EventLog, paths: dict[str, tuple[str, ...]]) -> None:
        self.events = events
        self.paths = paths
        """Per device name: its node and every node above it."""
        self.answered: dict[str, bool] = {}
        """Whether each device answered in the last cycle."""
        self.ok_at: dict[str, float] = {}
        """When each device last answered (loop clock)."""
        self._reported_lost: set[str] = set()
        """The devices whose loss was an event (and whose return will be one)."""
        self._first_cycle_at: float | None = None
        self._meter_trusted: dict[str, bool] = {}
        self.fallen_back: set[str] = set()
        """The connectors unreachable beyond their lease whose fallback was an event."""
        self._implausible_at: dict[str, float] = {}
        """When each connector's implausible currents were last an event."""

    def seen(self, name: str, reachable: bool, outcome: object, now: float) -> None:
        """Track whether a device answers; a loss (of a device that answered before, or
        that did not answer within `CONNECT_GRACE_S` of the first cycle) and the return
        after it are events, merged with the others of their kind that come with them (an
        outage of many is one event). A read in flight (`InFlight`) changes nothing: the
        device counts as it did until its read ended."""
        if self._first_cycle_at is None:
            self._first_cycle_at = now
        if isinstance(outcome, InFlight):
            self.answered.setdefault(name, False)
            return
        if isinstance(outcome, Reading):
            self.ok_at[name] = now
        self.answered[name] = reachable
        path = self.paths.get(name, ())
        if reachable and name in self._reported_lost:
            self._reported_lost.discard(name)
            self.events.emit(
                EventLevel.INFO,
                name,
                "reachable again",
                category=EventCategory.DEVICE,
                burst=Burst("device-back", DEVICE_BACK, path),
            )
        elif not reachable and name not in self._reported_lost:
            if name not in self.ok_at and now - self._first_cycle_at < CONNECT_GRACE_S:
                return  # still connecting
            self._reported_lost.add(name)
            why = "no answer" if isinstance(outcome, TimedOut) else str(outcome)
            if isinstance(outcome, Failed):
                why = f"{type(outcome.error).__name__}: {outcome.error}"
            self.events.emit(
                EventLevel.WARNING,
                name,
                f"unreachable ({why})",
                category=EventCategory.DEVICE,
                burst=Burst("device-lost", DEVICE_LOST, path),
            )

    def implausible(self, name: str, reading: Reading, most_a: float, now: float) -> None:
        """A connector's currents turned implausible (`ConnectorRuntime.take`): a sensor
        fault, an event (not again within `IMPLAUSIBLE_AGAIN_S`)."""
        if now - self._implausible_at.get(name, -math.inf) < IMPLAUSIBLE_AGAIN_S:
            return
        self._implausible_at[name] = now
        read = "/".join(f"{reading.values.get(q)}" for q in _PHASE_CURRENTS)
        self.events.emit(
            EventLevel.WARNING,
            name,
            f"read {read} A, no current it can carry (at most {most_a:.4g} A): a sensor or "
            "register fault; counted as unknown (0 A, its draw counts in the base load)",
            category=EventCategory.CHARGER,
            burst=Burst(
                "implausible-current",
                "{n} connectors read currents they cannot carry: counted as unknown",
                self.paths.get(name, ()),
            ),
        )

    def fallback(
        self, name: str, watch: ChargerWatch, now: float, *, lease_s: float, failsafe_a: float
    ) -> None:
        """A connector unreachable longer than its lease has fallen back to its failsafe
        current by now (its own watchdog or profile lease): an event, once per outage."""
        lost_for = None if watch.last_ok_at is None else now - watch.last_ok_at
        if lost_for is None or watch.reachable(now):
            self.fallen_back.discard(name)
            return
        if lost_for < lease_s or name in self.fallen_back:
            return
        self.fallen_back.add(name)
        self.events.emit(
            EventLevel.WARNING,
            name,
            f"unreachable for {lost_for:.0f} s, beyond its {lease_s:g} s lease: it runs on its "
            f"failsafe current {failsafe_a:g} A",
            category=EventCategory.CHARGER,
            burst=Burst(
                "failsafe-fallback",
                f"{{n}} connectors unreachable beyond their {lease_s:g} s lease: on their "
                f"failsafe current {failsafe_a:g} A",
                self.paths.get(name, ()),
            ),
        )

    def meter_trust(
        self, meter_id: str, node_id: str, trusted: bool, *, degraded_percent: float
    ) -> None:
        """A meter lost (its node's budget degraded) or trusted again is an event; being
        trusted the first time after start-up is not."""
        before = self._meter_trusted.get(meter_id)  # None until first trusted
        if before is None:
            if trusted:
                self._meter_trusted[meter_id] = True
            return
        if before == trusted:
            return
        self._meter_trusted[meter_id] = trusted
        path = self.paths.get(f"meter:{meter_id}", ())
        if trusted:
            self.events.emit(
                EventLevel.INFO,
                f"meter:{meter_id}",
                f"trusted again: {node_id} has its full budget",
                category=EventCategory.METER,
                burst=Burst("meter-back", "{n} meters trusted again, full budgets", path),
            )
        else:
            self.events.emit(
                EventLevel.WARNING,
                f"meter:{meter_id}",
                f"lost: {node_id} runs on {degraded_percent:g} % of its limit in force",
                category=EventCategory.METER,
                burst=Burst("meter-lost", "{n} meters lost, their nodes on degraded budgets", path),
            )


_PHASE_CURRENTS = (Quantity.CURRENT_L1, Quantity.CURRENT_L2, Quantity.CURRENT_L3)
