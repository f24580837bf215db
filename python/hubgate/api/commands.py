"""Operator commands that need the control loop or OCPP, behind a typed protocol.

The API checks the request (auth, known connector, value ranges) and then
hands it to whoever implements `Commands`; the control loop does, and the
tests use a recording implementation. A command the implementation cannot
carry out raises `CommandRejectedError` with a reason for the operator.
"""

from __future__ import annotations

from typing import Protocol

from hubgate.errors import HubgateError


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
