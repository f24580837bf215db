"""Firmware profiles: the schema, loading with located errors, and wire resolution."""

from hubgate.profiles.loader import (
    close_names,
    default_dir,
    load_all,
    load_named,
    load_profile,
    problems_in_file,
    profile_files,
)
from hubgate.profiles.model import Profile, Quantity
from hubgate.profiles.plan import RegisterSpec, field_specs

__all__ = [
    "Profile",
    "Quantity",
    "RegisterSpec",
    "close_names",
    "default_dir",
    "field_specs",
    "load_all",
    "load_named",
    "load_profile",
    "problems_in_file",
    "profile_files",
]
