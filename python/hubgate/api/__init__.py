"""The operator API, live dashboard and Prometheus metrics, served in the gateway's process."""

from hubgate.api.context import ApiContext
from hubgate.api.metrics import MetricsRegistry
from hubgate.api.server import serve_api

__all__ = ["ApiContext", "MetricsRegistry", "serve_api"]
