"""The operator API, live dashboard and Prometheus metrics, served in the gateway's process."""

import sys

# FastAPI imports pydantic.v1 (1.8 MiB resident) only to check that no route uses a v1 model;
# none of hubgate's does, and nothing else in the gateway's process imports it.
if "pydantic.v1" not in sys.modules:
    sys.modules["pydantic.v1"] = None  # type: ignore[assignment]  # importing it raises ImportError

from hubgate.api.context import ApiContext
from hubgate.api.metrics import MetricsRegistry
from hubgate.api.server import serve_api

__all__ = ["ApiContext", "MetricsRegistry", "serve_api"]
