"""hubgate: local energy-management gateway for EV charging hubs (OCPP and Modbus)."""

from hubgate._core import __version__

__all__ = ["__version__"]
