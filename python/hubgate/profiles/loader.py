"""Finding and loading profile files, every problem located (file, line, field, fix)."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from hubgate.profiles.checks import profile_problems
from hubgate.profiles.model import Profile
from hubgate.tomlcheck import ConfigError, ConfigProblem, locate, read_toml, validation_problems

PROFILES_ENV = "HUBGATE_PROFILES"
"""Environment variable naming the profiles folder, overriding the default."""

SUFFIX = ".toml"


def default_dir() -> Path:
    """`$HUBGATE_PROFILES`, else the repository's `firmware-profiles/`."""
    override = os.environ.get(PROFILES_ENV)
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[3] / "firmware-profiles"


def profile_files(folder: Path | None = None) -> dict[str, Path]:
    """Profile name (the file stem) → file, sorted by name."""
    root = folder or default_dir()
    return {p.stem: p for p in sorted(root.glob(f"*{SUFFIX}"))}


def close_names(name: str, folder: Path | None = None) -> list[str]:
    """Existing profile names that look like `name`, best first."""
    return difflib.get_close_matches(name, list(profile_files(folder)), n=3, cutoff=0.5)


def problems_in_file(path: Path) -> list[ConfigProblem]:
    """Every problem of one profile file; empty when it loads."""
    try:
        text, data = read_toml(path)
    except ConfigError as exc:
        return exc.problems
    found = validation_problems(Profile, data)
    if not found:
        profile = Profile.model_validate(data)
        if profile.name != path.stem:
            found.append(
                (("name",), f"name '{profile.name}' must equal the file name: use '{path.stem}'")
            )
        found.extend(profile_problems(profile))
    return locate(str(path), text, found)


def load_profile(path: Path) -> Profile:
    """One validated profile; `ConfigError` with every problem otherwise."""
    problems = problems_in_file(path)
    if problems:
        raise ConfigError(problems)
    _text, data = read_toml(path)
    return Profile.model_validate(data)


def load_named(name: str, folder: Path | None = None) -> Profile:
    """The profile called `name`; `ConfigError` naming close names when absent."""
    files = profile_files(folder)
    if name not in files:
        close = close_names(name, folder)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        where = str(folder or default_dir())
        raise ConfigError(
            [
                ConfigProblem(
                    where, "", None, f"no profile '{name}'; {hint}see `hubgate profiles list`"
                )
            ]
        )
    return load_profile(files[name])


def load_all(folder: Path | None = None) -> dict[str, Profile]:
    """Every profile of the folder; `ConfigError` with the problems of all files."""
    problems: list[ConfigProblem] = []
    for path in profile_files(folder).values():
        problems.extend(problems_in_file(path))
    if problems:
        raise ConfigError(problems)
    return {name: load_profile(path) for name, path in profile_files(folder).items()}
