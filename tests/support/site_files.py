"""Site files written to a test's folder and loaded as `hubgate` loads them."""

from __future__ import annotations

from pathlib import Path

from hubgate.config import ConfigError, SiteConfig, load_site

MINIMAL_SITE = """\
[site]
name = "test"

[grid]
phase_current_limit_a = 100

"""
"""A site with a grid limit and nothing else; tests append their tables."""


def load_text(tmp_path: Path, text: str) -> SiteConfig:
    """`MINIMAL_SITE` + `text` as `tmp_path/site.toml`, loaded."""
    path = tmp_path / "site.toml"
    path.write_text(MINIMAL_SITE + text)
    return load_site(path)


def site_problems(tmp_path: Path, text: str) -> list[str]:
    """The problems `load_site` finds in `MINIMAL_SITE` + `text` (none when it loads)."""
    try:
        load_text(tmp_path, text)
    except ConfigError as error:
        return [str(p) for p in error.problems]
    return []
