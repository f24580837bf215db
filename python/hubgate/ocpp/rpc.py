"""OCPP-J framing as a sans-IO layer: text in, messages out, and back.

`parse` turns one WebSocket text message into a `Call`, `CallResult`,
`CallError`, `CallResultError` or `Send` (the last two exist from OCPP 2.1 on).
A frame that is not valid OCPP-J raises `RpcError` carrying the CallError code
the protocol version prescribes, and whether the peer may be answered at all.
JSON is orjson's: strict RFC 8259 (no NaN or Infinity, no lone surrogates), and about
half the stdlib's time to parse a MeterValues, a twentieth to write an answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import orjson

from hubgate.ocpp.errors import UNREADABLE_ID, ErrorCode, RpcError
from hubgate.ocpp.versions import OcppVersion

Payload = dict[str, Any]

MAX_UNIQUE_ID_LENGTH = 36
"""OCPP-J: a message id is a string of at most 36 characters."""


def subprotocol(version: OcppVersion) -> str:
    """The Sec-WebSocket-Protocol token of a version, e.g. `ocpp2.0.1`."""
    return f"ocpp{version.value}"


class MessageTypeId(IntEnum):
    """The first element of every OCPP-J frame."""

    CALL = 2
    CALLRESULT = 3
    CALLERROR = 4
    CALLRESULTERROR = 5
    SEND = 6


_V16_SPELLING = {
    ErrorCode.FORMAT_VIOLATION: ErrorCode.FORMATION_VIOLATION,
    ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION: ErrorCode.OCCURENCE_CONSTRAINT_VIOLATION,
    ErrorCode.RPC_FRAMEWORK_ERROR: ErrorCode.PROTOCOL_ERROR,
    ErrorCode.MESSAGE_TYPE_NOT_SUPPORTED: ErrorCode.PROTOCOL_ERROR,
}


def error_code_for(version: OcppVersion, code: ErrorCode) -> ErrorCode:
    """The code as `version` names it: 1.6 spells two codes differently and lacks two."""
    return _V16_SPELLING.get(code, code) if version is OcppVersion.V16 else code


@dataclass(frozen=True, slots=True)
class Call:
    """A request: [2, id, action, payload]."""

    unique_id: str
    action: str
    payload: Payload


@dataclass(frozen=True, slots=True)
class CallResult:
    """A successful response: [3, id, payload]."""

    unique_id: str
    payload: Payload


@dataclass(frozen=True, slots=True)
class CallError:
    """A failed response: [4, id, code, description, details]."""

    unique_id: str
    code: str
    description: str
    details: Payload


@dataclass(frozen=True, slots=True)
class CallResultError:
    """OCPP 2.1: an error about a received CallResult: [5, id, code, description, details]."""

    unique_id: str
    code: str
    description: str
    details: Payload


@dataclass(frozen=True, slots=True)
class Send:
    """OCPP 2.1: an unconfirmed message: [6, id, action, payload]."""

    unique_id: str
    action: str
    payload: Payload


Message = Call | CallResult | CallError | CallResultError | Send

_LEADING_ID = re.compile(rf'^\s*\[\s*(\d)\s*,\s*"([^"\\]{{1,{MAX_UNIQUE_ID_LENGTH}}})"')


def peek_unique_id(text: str) -> tuple[int | None, str]:
    """Message type and id from the start of a frame without parsing it (for oversize frames)."""
    match = _LEADING_ID.match(text[:64])
    if match is None:
        return None, UNREADABLE_ID
    return int(match.group(1)), match.group(2)


def parse(text: str | bytes, version: OcppVersion) -> Message:
    """Parse one frame; raise `RpcError` with the version's code when it is not OCPP-J."""
    try:
        frame = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        message_type, unique_id = peek_unique_id(text if isinstance(text, str) else "")
        raise RpcError(
            error_code_for(version, ErrorCode.RPC_FRAMEWORK_ERROR),
            f"not valid JSON: {exc}",
            unique_id=unique_id,
            answerable=message_type in (None, MessageTypeId.CALL),
        ) from None
    if (  # a well-formed call, the usual frame: the checks below in one go
        type(frame) is list
        and len(frame) == 4
        and type(frame[0]) is int
        and frame[0] == MessageTypeId.CALL
        and type(frame[1]) is str
        and 0 < len(frame[1]) <= MAX_UNIQUE_ID_LENGTH
        and type(frame[2]) is str
        and frame[2]
        and type(frame[3]) is dict
    ):
        return Call(frame[1], frame[2], frame[3])
    if not isinstance(frame, list) or not frame:
        raise RpcError(
            error_code_for(version, ErrorCode.RPC_FRAMEWORK_ERROR),
            "a frame must be a non-empty JSON array",
        )
    unique_id = _read_unique_id(frame, version)
    message_type = frame[0]
    allowed = (2, 3, 4, 5, 6) if version is OcppVersion.V21 else (2, 3, 4)
    if isinstance(message_type, bool) or message_type not in allowed:
        raise RpcError(
            error_code_for(version, ErrorCode.MESSAGE_TYPE_NOT_SUPPORTED),
            f"message type {message_type!r} is not one of {list(allowed)}",
            unique_id=unique_id,
        )
    answerable = message_type == MessageTypeId.CALL
    if message_type in (MessageTypeId.CALL, MessageTypeId.SEND):
        _check_length(frame, 4, version, unique_id, answerable)
        action, payload = frame[2], frame[3]
        if not isinstance(action, str) or not action:
            raise RpcError(
                error_code_for(version, ErrorCode.FORMAT_VIOLATION),
                "the action must be a non-empty string",
                unique_id=unique_id,
            )
        payload = _payload(payload, version, unique_id, answerable)
        if message_type == MessageTypeId.CALL:
            return Call(unique_id, action, payload)
        return Send(unique_id, action, payload)
    if message_type == MessageTypeId.CALLRESULT:
        _check_length(frame, 3, version, unique_id, answerable)
        return CallResult(unique_id, _payload(frame[2], version, unique_id, answerable))
    _check_length(frame, 5, version, unique_id, answerable)
    code, description, details = frame[2], frame[3], frame[4]
    if not isinstance(code, str) or not isinstance(description, str):
        raise RpcError(
            error_code_for(version, ErrorCode.FORMAT_VIOLATION),
            "errorCode and errorDescription must be strings",
            unique_id=unique_id,
            answerable=False,
        )
    details = _payload(details, version, unique_id, answerable)
    if message_type == MessageTypeId.CALLERROR:
        return CallError(unique_id, code, description, details)
    return CallResultError(unique_id, code, description, details)


def _read_unique_id(frame: list[Any], version: OcppVersion) -> str:
    if len(frame) < 2 or not isinstance(frame[1], str) or not frame[1]:
        raise RpcError(
            error_code_for(version, ErrorCode.RPC_FRAMEWORK_ERROR),
            "the message id (second element) must be a non-empty string",
        )
    if len(frame[1]) > MAX_UNIQUE_ID_LENGTH:
        raise RpcError(
            error_code_for(version, ErrorCode.RPC_FRAMEWORK_ERROR),
            f"the message id is longer than {MAX_UNIQUE_ID_LENGTH} characters",
        )
    unique_id: str = frame[1]
    return unique_id


def _check_length(
    frame: list[Any], length: int, version: OcppVersion, unique_id: str, answerable: bool
) -> None:
    if len(frame) != length:
        raise RpcError(
            error_code_for(version, ErrorCode.RPC_FRAMEWORK_ERROR),
            f"a message of type {frame[0]} has {length} elements, got {len(frame)}",
            unique_id=unique_id,
            answerable=answerable,
        )


def _payload(value: object, version: OcppVersion, unique_id: str, answerable: bool) -> Payload:
    if not isinstance(value, dict):
        raise RpcError(
            error_code_for(version, ErrorCode.FORMAT_VIOLATION),
            f"the payload must be a JSON object, got {type(value).__name__}",
            unique_id=unique_id,
            answerable=answerable,
        )
    return value


def encode(message: Message) -> str:
    """The frame's JSON text."""
    frame: list[Any]
    match message:
        case CallResult(unique_id, payload):  # (first: a CSMS sends mostly answers)
            frame = [MessageTypeId.CALLRESULT, unique_id, payload]
        case Call(unique_id, action, payload):
            frame = [MessageTypeId.CALL, unique_id, action, payload]
        case Send(unique_id, action, payload):
            frame = [MessageTypeId.SEND, unique_id, action, payload]
        case CallError(unique_id, code, description, details):
            frame = [MessageTypeId.CALLERROR, unique_id, code, description, details]
        case CallResultError(unique_id, code, description, details):
            frame = [MessageTypeId.CALLRESULTERROR, unique_id, code, description, details]
    return orjson.dumps(frame).decode()


def error_reply(error: RpcError, version: OcppVersion) -> CallError:
    """The CallError answering `error` (description cut to the spec's 255 characters)."""
    return CallError(
        error.unique_id, error_code_for(version, error.code), error.description[:255], error.details
    )
