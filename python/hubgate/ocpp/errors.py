"""Errors of outgoing OCPP calls, as seen by the code that made them."""

from __future__ import annotations

from hubgate._core import HubgateError


class OcppCallError(HubgateError):
    """The charger answered a call with a CallError, or with a result its schema rejects."""

    def __init__(self, action: str, code: str, description: str) -> None:
        super().__init__(f"{action}: {code}: {description}")
        self.action = action
        self.code = code
        self.description = description


class OcppCallTimeoutError(HubgateError, TimeoutError):
    """The charger did not answer a call in time."""


class OcppSessionClosedError(HubgateError, ConnectionError):
    """The charger's connection is gone (or was replaced by a newer one)."""
