"""Loading a site file: TOML in, a validated `SiteConfig` or every problem out.

A problem names the file, the field path, the line where it can be found,
what is wrong and what would be valid. All problems of a file are reported at
once, so that a user fixes them in one pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hubgate.config.addresses import device_problems, listener_problems
from hubgate.config.model import SiteConfig
from hubgate.config.profile_refs import profile_problems, with_transport_defaults
from hubgate.config.references import reference_problems
from hubgate.config.tokens import authorization_problems
from hubgate.tomlcheck import ConfigError, ConfigProblem, locate, read_toml, validation_problems

__all__ = ["ConfigError", "ConfigProblem", "load_site", "problems_in"]


def problems_in(data: Mapping[str, Any], text: str, file: str) -> list[ConfigProblem]:
    """Every problem in already-parsed site data; empty when it is valid."""
    data = with_transport_defaults(data)
    found = validation_problems(SiteConfig, data)
    found.extend(reference_problems(data))
    found.extend(profile_problems(data))
    found.extend(authorization_problems(data))
    if not found:  # checks of the whole site, defaults included, once it is valid
        site = SiteConfig.model_validate(data)
        found = listener_problems(site) + device_problems(site)
    return locate(file, text, found)


def load_site(path: str | Path) -> SiteConfig:
    """Read and validate a site file; raise `ConfigError` with every problem.

    A relative `[authorization] tokens_file` is made relative to the site file's folder."""
    text, data = read_toml(path)
    problems = problems_in(data, text, str(path))
    if problems:
        raise ConfigError(problems)
    site = SiteConfig.model_validate(with_transport_defaults(data))
    authorization = site.authorization
    if authorization is not None and authorization.tokens_file is not None:
        tokens_file = Path(path).parent / authorization.tokens_file
        authorization = authorization.model_copy(update={"tokens_file": str(tokens_file)})
        site = site.model_copy(update={"authorization": authorization})
    return site
