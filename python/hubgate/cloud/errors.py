"""What the CSMS side raises besides the OCPP errors of its sessions."""

from __future__ import annotations

from hubgate._core import HubgateError


class CsmsCallError(HubgateError):
    """The CSMS answered a replayed Call with a CallError."""

    def __init__(self, error_code: str, description: str = "") -> None:
        super().__init__(f"{error_code}: {description}" if description else error_code)
        self.error_code = error_code
