"""The site's electrical tree as text: the grid connection, nodes and chargers."""

from __future__ import annotations

from collections import defaultdict

from hubgate.config.model import GRID_NODE_ID, Charger, Limits, SiteConfig
from hubgate.wording import counted


def _limits(limits: Limits, phase_limit: tuple[float, float, float] | None) -> str:
    parts = []
    if phase_limit is not None:
        if len(set(phase_limit)) == 1:
            parts.append(f"3x{phase_limit[0]:g} A")
        else:
            parts.append("/".join(f"{v:g}" for v in phase_limit) + " A")
    if limits.power_limit_kw is not None:
        parts.append(f"{limits.power_limit_kw:g} kW")
    if limits.unbalance_limit_a is not None:
        parts.append(f"unbalance {limits.unbalance_limit_a:g} A")
    return ", ".join(parts) if parts else "no own limit"


def _charger_line(charger: Charger) -> str:
    if charger.ocpp is not None:
        link = f"OCPP {charger.ocpp.identity}"
    else:
        assert charger.modbus is not None
        endpoint = charger.modbus
        serial = endpoint.serial.device if endpoint.serial else ""
        where = f"{endpoint.host}:{endpoint.port}" if endpoint.host else serial
        link = f"Modbus {endpoint.profile} @ {where} unit {endpoint.unit}"
    connectors = ", ".join(
        f"#{c.id} DC {c.dc.min_power_kw:g}-{c.dc.max_power_kw:g} kW "
        f"({c.min_current_a:.1f}-{c.max_current_a:.1f} A)"
        if c.dc is not None
        else f"#{c.id} {c.phases} {c.min_current_a:g}-{c.max_current_a:g} A"
        for c in charger.connectors
    )
    rotation = "" if charger.phase_rotation == "L1L2L3" else f" rot {charger.phase_rotation}"
    return f"{charger.id} [{link}{rotation}] {connectors}"


def render_tree(config: SiteConfig) -> str:
    """The whole tree, one line per node and charger, with limits and totals."""
    children: dict[str, list[str]] = defaultdict(list)
    node_lines: dict[str, str] = {}
    for node in config.nodes:
        children[node.parent].append(node.id)
        node_lines[node.id] = f"{node.id} ({node.kind}) {_limits(node, node.phase_current_limit_a)}"
    chargers: dict[str, list[Charger]] = defaultdict(list)
    for charger in config.chargers:
        chargers[charger.node].append(charger)
    meters: dict[str, list[str]] = defaultdict(list)
    for meter in config.meters:
        meters[meter.node].append(meter.id)

    grid = config.grid
    connectors = sum(len(c.connectors) for c in config.chargers)
    out = [
        f"{config.site.name}: {counted(len(config.nodes), 'node')}, "
        f"{counted(len(config.chargers), 'charger')}, {counted(connectors, 'connector')}",
        f"{GRID_NODE_ID} (connection {grid.voltage_v:g} V) "
        f"{_limits(grid, grid.phase_current_limit_a)}{_metered(meters[GRID_NODE_ID])}",
    ]

    def walk(node_id: str, indent: str) -> None:
        items: list[tuple[str, str | None]] = [
            (node_lines[c] + _metered(meters[c]), c) for c in children[node_id]
        ]
        items += [(_charger_line(c), None) for c in chargers[node_id]]
        for index, (line, child) in enumerate(items):
            last = index == len(items) - 1
            out.append(f"{indent}{'└── ' if last else '├── '}{line}")
            if child is not None:
                walk(child, indent + ("    " if last else "│   "))

    walk(GRID_NODE_ID, "")
    return "\n".join(out)


def _metered(meter_ids: list[str]) -> str:
    return f" metered by {', '.join(meter_ids)}" if meter_ids else ""
