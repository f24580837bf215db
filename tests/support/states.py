"""Site states for the tests that serve or read one (API, Modbus server, state hub, metrics):
a node, a connector and a site state with plausible defaults, any field given by name.

    state = site_state(nodes=[node("grid", measured_a=(50, 40, 30))],
                       connectors=[connector("cp-1#1", setpoint_a=16)])
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hubgate.state import ConnectorState, DeviceHealth, Event, NodeState, SiteState


def node(id: str, *, parent: str | None = None, **fields: Any) -> NodeState:
    """A node (the grid connection unless `kind` or `parent` says otherwise) at 48 A a phase
    commanded under a 100 A limit, unmetered unless `measured_a` is given."""
    values: dict[str, Any] = {
        "kind": "grid" if parent is None else "switchboard",
        "measured_a": None,
        "commanded_a": (48.0, 48.0, 48.0),
        "limit_a": (100.0, 100.0, 100.0),
    }
    return NodeState(id=id, parent=parent, **(values | fields))


def connector(key: str, **fields: Any) -> ConnectorState:
    """A charging three-phase OCPP connector `charger-id#n` on the grid node at 16 A."""
    charger, _, number = key.rpartition("#")
    values: dict[str, Any] = {
        "node": "grid",
        "protocol": "ocpp",
        "status": "Charging",
        "setpoint_a": 16.0,
        "phases": 3,
    }
    return ConnectorState(key=key, charger=charger, connector=int(number), **(values | fields))


def site_state(
    *,
    nodes: Iterable[NodeState],
    connectors: Iterable[ConnectorState] = (),
    devices: Iterable[DeviceHealth] = (),
    events: Iterable[Event] = (),
    **fields: Any,
) -> SiteState:
    """A site state of these nodes, connectors, devices and events (cycle 1 of site "t" at
    time 0 unless given)."""
    values: dict[str, Any] = {"site": "t", "cycle": 1, "at": 0.0}
    return SiteState(
        nodes=tuple(nodes),
        connectors=tuple(connectors),
        devices=tuple(devices),
        events=tuple(events),
        **(values | fields),
    )
