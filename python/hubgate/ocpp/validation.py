"""Payload validation against the `ocpp` package's shipped JSON schemas.

Each schema is compiled once (on first use, then cached for the process) into a
jsonschema-rs validator, which is about 60 times faster than the package's own
jsonschema path (fastjsonschema's generated Python reached only 17 times: see
bench/test_bench_ocpp.py). Timestamps are checked as RFC 3339 date-times, which
the package skips. Failures map to the CallError code of the violated keyword.
"""

from __future__ import annotations

import json
from enum import StrEnum
from functools import cache
from importlib import resources

import jsonschema_rs

from hubgate._core import OcppCallReader
from hubgate.ocpp.errors import UNREADABLE_ID, ErrorCode, RpcError
from hubgate.ocpp.rpc import Payload, error_code_for
from hubgate.ocpp.versions import OcppVersion

_DIRECTORY = {OcppVersion.V16: "v16", OcppVersion.V201: "v201", OcppVersion.V21: "v21"}

_KEYWORD_CODES = {
    "Type": ErrorCode.TYPE_CONSTRAINT_VIOLATION,
    "Required": ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
    "MinItems": ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
    "MaxItems": ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
    "AdditionalProperties": ErrorCode.FORMAT_VIOLATION,
}
"""Violated keyword (jsonschema-rs error kind) → CallError code; any other keyword is a
PropertyConstraintViolation (enum, maxLength, minimum, multipleOf, format, ...)."""


class Direction(StrEnum):
    """Which half of an exchange a payload is."""

    REQUEST = "request"
    RESPONSE = "response"


def _schema_name(version: OcppVersion, action: str, direction: Direction) -> str:
    if direction is Direction.RESPONSE:
        return f"{action}Response.json"
    if version is OcppVersion.V16 or action in _schema_names(version):
        return f"{action}.json"  # 1.6 requests, and 2.1 SEND-only messages
    return f"{action}Request.json"


@cache
def _schema_names(version: OcppVersion) -> frozenset[str]:
    folder = resources.files("ocpp") / _DIRECTORY[version] / "schemas"
    return frozenset(entry.name.removesuffix(".json") for entry in folder.iterdir())


@cache
def actions(version: OcppVersion) -> frozenset[str]:
    """Every action the version defines (2.1 includes its SEND-only messages)."""
    names = _schema_names(version)
    if version is OcppVersion.V16:
        return frozenset(n for n in names if not n.endswith("Response"))
    return frozenset(n.removesuffix("Request") for n in names if not n.endswith("Response"))


def _schema_text(version: OcppVersion, action: str, direction: Direction) -> str:
    path = resources.files("ocpp") / _DIRECTORY[version] / "schemas"
    return (path / _schema_name(version, action, direction)).read_text(encoding="utf-8-sig")


@cache
def compiled(version: OcppVersion, action: str, direction: Direction) -> jsonschema_rs.Validator:
    """The compiled validator of one schema; built on first use, then reused."""
    schema = json.loads(_schema_text(version, action, direction))
    schema.pop("$id", None)  # 2.1 URNs are not resolvable and not needed
    return jsonschema_rs.validator_for(schema, validate_formats=True)


@cache
def hot_reader(version: OcppVersion, actions: frozenset[str]) -> OcppCallReader:
    """The Rust reader of those of `actions` it reads (MeterValues, StatusNotification,
    Heartbeat), with the same schemas as `compiled` (the engine jsonschema-rs wraps, the
    same formats checked); it reads only calls that `validate` accepts."""
    reader = OcppCallReader(v16=version is OcppVersion.V16)
    for action in actions:
        reader.add(action, _schema_text(version, action, Direction.REQUEST))
    return reader


@cache
def _empty_is_valid(version: OcppVersion, action: str, direction: Direction) -> bool:
    return compiled(version, action, direction).is_valid({})


def validate(
    version: OcppVersion,
    action: str,
    direction: Direction,
    payload: Payload,
    *,
    unique_id: str = UNREADABLE_ID,
) -> None:
    """Check `payload`; raise `RpcError` (NotImplemented for an unknown action) if it fails."""
    if action not in actions(version):
        raise RpcError(
            ErrorCode.NOT_IMPLEMENTED,
            f"unknown action {action!r} in OCPP {version}",
            unique_id=unique_id,
        )
    if not payload and _empty_is_valid(version, action, direction):
        return  # (most answers of a CSMS, and a Heartbeat: the same check every time)
    try:
        compiled(version, action, direction).validate(payload)
    except jsonschema_rs.ValidationError as exc:
        keyword = type(exc.kind).__name__
        code = _KEYWORD_CODES.get(keyword, ErrorCode.PROPERTY_CONSTRAINT_VIOLATION)
        where = "/".join(str(part) for part in exc.instance_path) or "payload"
        raise RpcError(
            error_code_for(version, code),
            f"{action} {direction}: {where}: {exc.message}",
            unique_id=unique_id,
        ) from None
