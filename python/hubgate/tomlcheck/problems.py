"""Located problems: validation errors turned into file, line, path and fix."""

from __future__ import annotations

import difflib
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from hubgate._core import HubgateError
from hubgate.tomlcheck.lines import Loc, line_of

_KEY = "[key]"
"""The last part of a pydantic location that points at a dictionary key."""


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong in a configuration file."""

    file: str
    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(HubgateError):
    """A configuration file that cannot be used; carries every problem found."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def format_path(loc: Loc) -> str:
    """`("chargers", 3, "node")` as `chargers[3].node`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for arg in typing.get_args(annotation):
            found = _nested_model(arg)
            if found is not None:
                return found
    return None


def _is_mapping(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (dict, Mapping):
        return True
    return any(_is_mapping(arg) for arg in typing.get_args(annotation) if arg is not type(None))


def _model_at(root: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model class that holds the field at `loc` (its last part)."""
    model = root
    skip_key = False
    for part in loc[:-1]:
        if isinstance(part, int) or skip_key:
            skip_key = False
            continue
        field = model.model_fields.get(part)
        nested = _nested_model(field.annotation) if field else None
        if field is None or nested is None:
            return None
        skip_key = _is_mapping(field.annotation)
        model = nested
    return model


def _close(word: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(word, valid, n=1)
    return f"did you mean '{close[0]}'? " if close else ""


def _describe(root: type[BaseModel], error: Mapping[str, Any]) -> str:
    loc: Loc = tuple(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden" and loc and isinstance(loc[-1], str):
        model = _model_at(root, loc)
        valid = sorted(model.model_fields) if model else []
        return f"unknown key '{loc[-1]}'; {_close(loc[-1], valid)}valid keys: {', '.join(valid)}"
    if loc and loc[-1] == _KEY and len(loc) >= 2:
        expected = str(error.get("ctx", {}).get("expected", ""))
        valid = re.findall(r"'([^']*)'", expected)
        name = str(loc[-2])
        return f"unknown name '{name}'; {_close(name, valid)}valid names: {', '.join(valid)}"
    if kind == "missing":
        return f"required key '{loc[-1]}' is missing" if loc else "required table is missing"
    message = str(error["msg"]).removeprefix("Value error, ")
    if "input" in error and kind not in ("model_type", "value_error"):
        message += f", got {error['input']!r}"
    return message


def validation_problems(root: type[BaseModel], data: Mapping[str, Any]) -> list[tuple[Loc, str]]:
    """Every schema problem of `data` against `root`, as (field path, message)."""
    try:
        root.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        locs = [tuple(e["loc"]) for e in errors]
        # A container fails too when one of its items does: report the item only.
        return [
            (loc[:-1] if loc and loc[-1] == _KEY else loc, _describe(root, e))
            for loc, e in zip(locs, errors, strict=True)
            if not any(len(other) > len(loc) and other[: len(loc)] == loc for other in locs)
        ]
    return []


def locate(file: str, text: str, found: list[tuple[Loc, str]]) -> list[ConfigProblem]:
    """Attach the file and line to (field path, message) pairs."""
    return [ConfigProblem(file, format_path(loc), line_of(text, loc), msg) for loc, msg in found]


def read_toml(path: str | Path) -> tuple[str, dict[str, Any]]:
    """The text and parsed data of a TOML file; `ConfigError` when unreadable."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigProblem(file, "", None, f"cannot read the file: {exc}")]) from exc
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([ConfigProblem(file, "", None, f"not valid TOML: {exc}")]) from exc
