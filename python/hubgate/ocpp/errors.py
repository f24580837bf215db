"""OCPP errors: CallError codes, protocol violations (`RpcError`), and failures of
outgoing calls as seen by the code that made them."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from hubgate._core import HubgateError

UNREADABLE_ID = "-1"
"""The message id used in a CallError when the offending frame's id cannot be read."""


class ErrorCode(StrEnum):
    """CallError codes (OCPP-J 1.6 §4.2.3, 2.0.1/2.1 Part 4 §4.3)."""

    FORMAT_VIOLATION = "FormatViolation"
    FORMATION_VIOLATION = "FormationViolation"  # the 1.6 spelling of FormatViolation
    GENERIC_ERROR = "GenericError"
    INTERNAL_ERROR = "InternalError"
    MESSAGE_TYPE_NOT_SUPPORTED = "MessageTypeNotSupported"
    NOT_IMPLEMENTED = "NotImplemented"
    NOT_SUPPORTED = "NotSupported"
    OCCURENCE_CONSTRAINT_VIOLATION = "OccurenceConstraintViolation"  # the 1.6 spelling
    OCCURRENCE_CONSTRAINT_VIOLATION = "OccurrenceConstraintViolation"
    PROPERTY_CONSTRAINT_VIOLATION = "PropertyConstraintViolation"
    PROTOCOL_ERROR = "ProtocolError"
    RPC_FRAMEWORK_ERROR = "RpcFrameworkError"
    SECURITY_ERROR = "SecurityError"
    TYPE_CONSTRAINT_VIOLATION = "TypeConstraintViolation"


class RpcError(HubgateError):
    """A frame or payload the protocol rejects; becomes a CallError (or CallResultError).

    `unique_id` is the offending frame's id (`UNREADABLE_ID` if unknown); `answerable`
    is False for broken responses, which OCPP-J does not answer with a CallError.
    """

    def __init__(
        self,
        code: ErrorCode,
        description: str,
        *,
        unique_id: str = UNREADABLE_ID,
        answerable: bool = True,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
        self.unique_id = unique_id
        self.answerable = answerable
        self.details = details or {}


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
