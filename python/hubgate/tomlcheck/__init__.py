"""Checking TOML files against pydantic models, with every problem located.

Shared by site files (`hubgate.config`) and firmware profiles
(`hubgate.profiles`): a problem names the file, the line, the field path,
what is wrong and what would be valid.
"""

from hubgate.tomlcheck.lines import Loc, line_of
from hubgate.tomlcheck.problems import (
    ConfigError,
    ConfigProblem,
    format_path,
    locate,
    read_toml,
    validation_problems,
)

__all__ = [
    "ConfigError",
    "ConfigProblem",
    "Loc",
    "format_path",
    "line_of",
    "locate",
    "read_toml",
    "validation_problems",
]
