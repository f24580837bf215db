"""Site configuration: the model, loading with located errors, and the tree view."""

from hubgate.config.loader import ConfigError, ConfigProblem, load_site
from hubgate.config.model import SiteConfig
from hubgate.config.topology import render_tree

__all__ = ["ConfigError", "ConfigProblem", "SiteConfig", "load_site", "render_tree"]
