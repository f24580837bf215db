"""The MQTT topic scheme, the one place topic names are made (documented in docs/mqtt.md).

<prefix>/<site>/status                                  "online" / "offline", retained
<prefix>/<site>/site/<quantity>                         site measurements
<prefix>/<site>/node/<node>/<quantity>                  node measurements
<prefix>/<site>/connector/<charger>/<connector>/<quantity>
<prefix>/<site>/event                                   events, JSON with a "kind"
"""

from __future__ import annotations

import re

_LEVEL = re.compile(r"^[^/+#\s]+$")


def _level(value: str | int) -> str:
    text = str(value)
    if not _LEVEL.match(text):
        raise ValueError(f"not usable as one MQTT topic level: {text!r}")
    return text


class Topics:
    """Topic names under `<prefix>/<site>`."""

    def __init__(self, prefix: str, site: str) -> None:
        self.root = f"{prefix}/{_level(site)}"

    @property
    def status(self) -> str:
        """Retained "online"; the broker's will sets "offline"."""
        return f"{self.root}/status"

    @property
    def event(self) -> str:
        """Every event, one JSON object each."""
        return f"{self.root}/event"

    def site(self, quantity: str) -> str:
        """A measurement of the whole site (grid connection)."""
        return f"{self.root}/site/{_level(quantity)}"

    def node(self, node_id: str, quantity: str) -> str:
        """A measurement of one node of the tree."""
        return f"{self.root}/node/{_level(node_id)}/{_level(quantity)}"

    def connector(self, charger_id: str, connector_id: int, quantity: str) -> str:
        """A measurement or state of one connector."""
        return (
            f"{self.root}/connector/{_level(charger_id)}/{_level(connector_id)}/{_level(quantity)}"
        )
