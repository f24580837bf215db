"""Finding and loading profile files, every problem located (file, line, field, fix)."""

from __future__ import annotations

import difflib
import os
from importlib import resources
from pathlib import Path

from hubgate.profiles.checks import profile_problems
from hubgate.profiles.model import Profile
from hubgate.tomlcheck import ConfigError, ConfigProblem, locate, read_toml, validation_problems

PROFILES_ENV = "HUBGATE_PROFILES"
"""Environment variable naming the profiles folder, overriding the default."""

SUFFIX = ".toml"


def default_dir() -> Path:
    """`$HUBGATE_PROFILES`, else the profiles shipped in the package: its
    `firmware_profiles` data folder, in a checkout a link to `firmware-profiles/`."""
    override = os.environ.get(PROFILES_ENV)
    if override:
        return Path(override)
    return Path(str(resources.files("hubgate") / "firmware_profiles")).resolve()


def profile_files(folder: Path | None = None) -> dict[str, Path]:
    """Profile name (the file stem) → file, sorted by name; `ConfigError` if no folder."""
    root = folder or default_dir()
    if not root.is_dir():
        raise ConfigError(
            [
                ConfigProblem(
                    str(root),
                    "",
                    None,
                    f"no profiles folder here; pass --dir or set {PROFILES_ENV}",
                )
            ]
        )
    return {p.stem: p for p in sorted(root.glob(f"*{SUFFIX}"))}


def close_names(name: str, folder: Path | None = None) -> list[str]:
    """Existing profile names that look like `name`, best first."""
    return difflib.get_close_matches(name, list(profile_files(folder)), n=3, cutoff=0.5)


def _read(path: Path) -> tuple[Profile | None, list[ConfigProblem]]:
    """The profile of one file, or every problem it has."""
    try:
        text, data = read_toml(path)
    except ConfigError as exc:
        return None, exc.problems
    found = validation_problems(Profile, data)
    if found:
        return None, locate(str(path), text, found)
    profile = Profile.model_validate(data)
    if profile.name != path.stem:
        found.append(
            (("name",), f"name '{profile.name}' must equal the file name: use '{path.stem}'")
        )
    found.extend(profile_problems(profile))
    return (None, locate(str(path), text, found)) if found else (profile, [])


def problems_in_file(path: Path) -> list[ConfigProblem]:
    """Every problem of one profile file; empty when it loads."""
    return _read(path)[1]


def load_profile(path: Path) -> Profile:
    """One validated profile; `ConfigError` with every problem otherwise."""
    profile, problems = _read(path)
    if profile is None:
        raise ConfigError(problems)
    return profile


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
    profiles: dict[str, Profile] = {}
    problems: list[ConfigProblem] = []
    for name, path in profile_files(folder).items():
        profile, found = _read(path)
        problems.extend(found)
        if profile is not None:
            profiles[name] = profile
    if problems:
        raise ConfigError(problems)
    return profiles
