"""Payload validation against the `ocpp` package's shipped JSON schemas.

Each schema is compiled once with fastjsonschema into plain Python code (on first
use, then cached for the process), which is about two orders of magnitude faster
than the package's own jsonschema path. Failures map to the CallError code of
the violated rule.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any

import fastjsonschema

from hubgate.config.model import OcppVersion
from hubgate.ocpp.rpc import ErrorCode, Payload, RpcError, error_code_for

Validator = Callable[[Any], Any]

_DIRECTORY = {OcppVersion.V16: "v16", OcppVersion.V201: "v201", OcppVersion.V21: "v21"}

_DATE_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:?\d{2})?$"
)
"""RFC 3339 date-time, tolerating a missing offset (many chargers omit it; read as UTC)."""

_RULE_CODES = {
    "type": ErrorCode.TYPE_CONSTRAINT_VIOLATION,
    "required": ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
    "minItems": ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
    "maxItems": ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
    "additionalProperties": ErrorCode.FORMAT_VIOLATION,
}
"""Schema rule → CallError code; every other rule is a PropertyConstraintViolation."""


class Direction(StrEnum):
    """Which half of an exchange a payload is."""

    REQUEST = "request"
    RESPONSE = "response"


def _schema_name(version: OcppVersion, action: str, direction: Direction) -> str:
    if direction is Direction.RESPONSE:
        return f"{action}Response.json"
    return f"{action}.json" if version is OcppVersion.V16 else f"{action}Request.json"


@cache
def actions(version: OcppVersion) -> frozenset[str]:
    """Every action the version defines (one request schema each)."""
    folder = resources.files("ocpp") / _DIRECTORY[version] / "schemas"
    names = {entry.name.removesuffix(".json") for entry in folder.iterdir()}
    if version is OcppVersion.V16:
        return frozenset(n for n in names if not n.endswith("Response"))
    return frozenset(n.removesuffix("Request") for n in names if n.endswith("Request"))


@cache
def compiled(version: OcppVersion, action: str, direction: Direction) -> Validator:
    """The compiled validator of one schema; built on first use, then reused."""
    path = resources.files("ocpp") / _DIRECTORY[version] / "schemas"
    text = (path / _schema_name(version, action, direction)).read_text(encoding="utf-8-sig")
    schema = json.loads(text)
    schema.pop("$id", None)  # 2.1 URNs are not resolvable and not needed
    validator: Validator = fastjsonschema.compile(
        schema, formats={"date-time": _DATE_TIME.pattern}, use_default=False
    )
    return validator


def validate(
    version: OcppVersion,
    action: str,
    direction: Direction,
    payload: Payload,
    *,
    unique_id: str = "-1",
) -> None:
    """Check `payload`; raise `RpcError` (NotImplemented for an unknown action) if it fails."""
    if action not in actions(version):
        raise RpcError(
            ErrorCode.NOT_IMPLEMENTED,
            f"unknown action {action!r} in OCPP {version}",
            unique_id=unique_id,
        )
    try:
        compiled(version, action, direction)(payload)
    except fastjsonschema.JsonSchemaValueException as exc:
        code = _RULE_CODES.get(exc.rule or "", ErrorCode.PROPERTY_CONSTRAINT_VIOLATION)
        raise RpcError(
            error_code_for(version, code),
            f"{action} {direction}: {exc.message}",
            unique_id=unique_id,
        ) from None
