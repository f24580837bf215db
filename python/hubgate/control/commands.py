"""Operator commands that need the control loop or a charger's session, behind a typed protocol.

The API checks the request (auth, known connector, value ranges) and then hands it to
whoever implements `Commands`: `SiteCommands` over a running control loop, or in the API's
tests a recording implementation. A command that cannot be carried out raises
`CommandRejectedError` with a reason for the operator.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from hubgate._core import HubgateError
from hubgate.config.model import PRIORITY_MAX
from hubgate.control.allocation import ConnectorKey
from hubgate.control.deadlines import NeedSource, SocTarget, need_text
from hubgate.control.plan import CyclePlanner
from hubgate.devices.model import Charger, SessionCharger
from hubgate.records.events import EventLog
from hubgate.state import EventLevel


class CommandRejectedError(HubgateError):
    """A command that was understood but cannot be carried out now (reason in the message)."""


class Commands(Protocol):
    """What the API asks of the control loop and the OCPP side."""

    async def set_priority(self, connector: str, priority: int) -> None:
        """Serve `connector` (`charger-id#n`) in priority tier `priority` from the next cycle."""

    async def start_charging(self, connector: str, id_tag: str | None) -> None:
        """Start a session on `connector` (OCPP RequestStartTransaction / RemoteStart)."""

    async def stop_charging(self, connector: str) -> None:
        """Stop the session on `connector` (OCPP RequestStopTransaction / RemoteStop)."""

    async def set_pv_mode(self, connector: str, pv_mode: bool) -> None:
        """Charge `connector` from PV surplus only (or from the grid again) from the next cycle."""

    async def set_session(
        self,
        connector: str,
        energy_kwh: float | None,
        departure: datetime | None,
        *,
        max_current_a: float | None = None,
        target: SocTarget | None = None,
    ) -> None:
        """The session on `connector` (or the next one) needs `energy_kwh` more (or what
        takes its EV to the state of charge `target`) by `departure`, its EV taking at most
        `max_current_a` per phase (None: not known); no need or no departure: no deadline."""


class SiteCommands:
    """`Commands` over a control loop's planner and its chargers."""

    def __init__(
        self,
        planner: CyclePlanner,
        chargers: Mapping[ConnectorKey, Charger],
        events: EventLog,
    ) -> None:
        """`events`: where the operator events of carried-out commands go."""
        self.planner = planner
        self.chargers = chargers
        self.events = events

    def _index(self, connector: str) -> int:
        index = self.planner.connector_index(connector)
        if index is None:
            raise CommandRejectedError(f"{connector}: no such connector")
        return index

    async def set_priority(self, connector: str, priority: int) -> None:
        """Serve `connector` in tier `priority` from the next cycle; its state is kept."""
        index = self._index(connector)
        if not 0 <= priority <= PRIORITY_MAX:
            raise CommandRejectedError(
                f"{connector}: priority must be a tier from 0 to {PRIORITY_MAX}, got {priority}"
            )
        allocator = self.planner.allocator
        before = allocator.priority(index)
        allocator.set_priority(index, priority)
        self.events.emit(EventLevel.INFO, connector, f"priority {before} -> {priority}")

    async def set_pv_mode(self, connector: str, pv_mode: bool) -> None:
        """Charge a connector from PV surplus only (or from the grid again) from the next cycle."""
        self.planner.energy.set_pv_mode(self._index(connector), pv_mode)
        self.events.emit(EventLevel.INFO, connector, "PV mode" if pv_mode else "grid mode")

    async def set_session(
        self,
        connector: str,
        energy_kwh: float | None,
        departure: datetime | None,
        *,
        max_current_a: float | None = None,
        target: SocTarget | None = None,
    ) -> None:
        """Give the session on a connector an energy need and a departure (or take them)."""
        index = self._index(connector)
        deadlines = self.planner.horizon.deadlines
        if (energy_kwh is None and target is None) or departure is None:
            deadlines.clear_need(index)
            self.events.emit(EventLevel.INFO, connector, "no deadline")
            return
        if departure.tzinfo is None:
            raise CommandRejectedError(
                f"{connector}: departure needs a UTC offset, e.g. 2026-03-01T05:30:00+01:00"
            )
        ev_max_a = math.inf if max_current_a is None else max_current_a
        energy_wh = 0.0 if energy_kwh is None else energy_kwh * 1000
        deadlines.set_need(
            index, energy_wh, departure.timestamp(), NeedSource.API, ev_max_a, target
        )
        self.events.emit(
            EventLevel.INFO,
            connector,
            f"needs {need_text(energy_kwh, target)} by {departure.isoformat()}",
        )

    async def start_charging(self, connector: str, id_tag: str | None) -> None:
        """Remote start on a charger with sessions (OCPP)."""
        status = await self._session_charger(connector).remote_start(id_tag or "hubgate")
        if status is None:
            raise CommandRejectedError(f"{connector}: the charge point is offline")
        if status != "Accepted":
            raise CommandRejectedError(f"{connector}: the charge point answered {status}")

    async def stop_charging(self, connector: str) -> None:
        """Remote stop of the connector's transaction."""
        status = await self._session_charger(connector).remote_stop()
        if status is None:
            raise CommandRejectedError(f"{connector}: no session to stop")
        if status != "Accepted":
            raise CommandRejectedError(f"{connector}: the charge point answered {status}")

    def _session_charger(self, connector: str) -> SessionCharger:
        index = self.planner.connector_index(connector)
        charger = None if index is None else self.chargers[self.planner.model.connectors[index].key]
        if not isinstance(charger, SessionCharger):
            raise CommandRejectedError(f"{connector}: start and stop are for OCPP charge points")
        return charger
