"""Loading a site file: TOML in, a validated `SiteConfig` or every problem out.

A problem names the file, the field path, the line where it can be found,
what is wrong and what would be valid. All problems of a file are reported at
once, so that a user fixes them in one pass.
"""

from __future__ import annotations

import difflib
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from hubgate.config.model import SiteConfig
from hubgate.config.references import Loc, reference_problems
from hubgate.config.toml_lines import line_of
from hubgate.errors import HubgateError


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong in a configuration file."""

    file: str
    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path or '(file)'}: {self.message}"


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


def _model_at(loc: Loc, root: type[BaseModel]) -> type[BaseModel] | None:
    """The model class below `root` that holds the field at `loc` (its last part)."""
    model = root
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        nested = _nested_model(field.annotation) if field else None
        if nested is None:
            return None
        model = nested
    return model


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for arg in typing.get_args(annotation):
            found = _nested_model(arg)
            if found is not None:
                return found
    return None


def _describe(error: Mapping[str, Any], root: type[BaseModel]) -> str:
    loc: Loc = tuple(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden" and loc and isinstance(loc[-1], str):
        model = _model_at(loc, root)
        valid = sorted(model.model_fields) if model else []
        close = difflib.get_close_matches(loc[-1], valid, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        return f"unknown key '{loc[-1]}'; {hint}valid keys: {', '.join(valid)}"
    if kind == "missing":
        return f"required key '{loc[-1]}' is missing" if loc else "required table is missing"
    message = str(error["msg"]).removeprefix("Value error, ")
    if "input" in error and kind not in ("model_type", "value_error"):
        message += f", got {error['input']!r}"
    return message


def field_problems(root: type[BaseModel], data: Mapping[str, Any]) -> list[tuple[Loc, str]]:
    """Every field error of `data` validated as `root`, each as (field path, message)."""
    try:
        root.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        locs = [tuple(e["loc"]) for e in errors]
        # A container fails too when one of its items does: report the item only.
        return [
            (loc, _describe(e, root))
            for loc, e in zip(locs, errors, strict=True)
            if not any(len(other) > len(loc) and other[: len(loc)] == loc for other in locs)
        ]
    return []


def located(found: list[tuple[Loc, str]], text: str, file: str) -> list[ConfigProblem]:
    """(field path, message) pairs as problems with the file and line."""
    return [ConfigProblem(file, format_path(loc), line_of(text, loc), msg) for loc, msg in found]


def problems_in(data: Mapping[str, Any], text: str, file: str) -> list[ConfigProblem]:
    """Every problem in already-parsed site data; empty when it is valid."""
    return located([*field_problems(SiteConfig, data), *reference_problems(data)], text, file)


def read_toml(path: str | Path) -> tuple[str, dict[str, Any]]:
    """The text and parsed data of a TOML file; `ConfigError` when it cannot be read."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigProblem(file, "", None, f"cannot read the file: {exc}")]) from exc
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([ConfigProblem(file, "", None, f"not valid TOML: {exc}")]) from exc


def load_site(path: str | Path) -> SiteConfig:
    """Read and validate a site file; raise `ConfigError` with every problem."""
    text, data = read_toml(path)
    problems = problems_in(data, text, str(path))
    if problems:
        raise ConfigError(problems)
    return SiteConfig.model_validate(data)
