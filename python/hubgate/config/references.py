"""Cross-reference checks of a site file: unique ids, parents, the tree.

They run on the raw TOML data, not the validated model, so that a wrong
reference is reported together with field errors elsewhere in the file.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from hubgate.config.model import GRID_NODE_ID
from hubgate.tomlcheck import Loc

_DEVICE_TABLES = ("chargers", "meters", "pv")
"""Arrays of tables whose entries carry an `id` and the `node` they hang from."""


def _entries(data: Mapping[str, Any], table: str) -> Iterator[tuple[int, Mapping[str, Any]]]:
    value = data.get(table)
    if isinstance(value, list):
        for index, entry in enumerate(value):
            if isinstance(entry, Mapping):
                yield index, entry


def reference_problems(data: Mapping[str, Any]) -> list[tuple[Loc, str]]:
    """Problems with ids and references, each as (field path, message)."""
    problems: list[tuple[Loc, str]] = []
    node_ids: dict[str, Loc] = {}
    for index, node in _entries(data, "nodes"):
        node_id = node.get("id")
        if not isinstance(node_id, str):
            continue
        if node_id == GRID_NODE_ID:
            problems.append(
                (
                    ("nodes", index, "id"),
                    f"'{GRID_NODE_ID}' is the grid connection; pick another id",
                )
            )
        elif node_id in node_ids:
            problems.append((("nodes", index, "id"), f"duplicate node id '{node_id}'"))
        else:
            node_ids[node_id] = ("nodes", index)
    known = [*sorted(node_ids), GRID_NODE_ID]

    def check_ref(loc: Loc, value: object, what: str) -> None:
        if isinstance(value, str) and value not in node_ids and value != GRID_NODE_ID:
            problems.append(
                (loc, f"{what} '{value}' does not exist; valid node ids: {', '.join(known)}")
            )

    parents: dict[str, str] = {}
    for index, node in _entries(data, "nodes"):
        parent = node.get("parent", GRID_NODE_ID)
        check_ref(("nodes", index, "parent"), parent, "parent node")
        if isinstance(node.get("id"), str) and isinstance(parent, str):
            parents[node["id"]] = parent
    problems.extend(_cycle_problems(parents, node_ids))

    device_ids: set[str] = set()
    for table in _DEVICE_TABLES:
        for index, entry in _entries(data, table):
            check_ref((table, index, "node"), entry.get("node", GRID_NODE_ID), "node")
            device_id = entry.get("id")
            if isinstance(device_id, str):
                if device_id in device_ids:
                    problems.append(((table, index, "id"), f"duplicate device id '{device_id}'"))
                device_ids.add(device_id)
    for index, entry in _entries(data, "schedules"):
        check_ref(("schedules", index, "node"), entry.get("node", GRID_NODE_ID), "node")
    battery = data.get("battery")
    if isinstance(battery, Mapping):
        check_ref(("battery", "node"), battery.get("node", GRID_NODE_ID), "node")

    identities: set[str] = set()
    for index, charger in _entries(data, "chargers"):
        ocpp = charger.get("ocpp")
        identity = ocpp.get("identity") if isinstance(ocpp, Mapping) else None
        if isinstance(identity, str):
            if identity in identities:
                problems.append(
                    (
                        ("chargers", index, "ocpp", "identity"),
                        f"duplicate OCPP identity '{identity}'",
                    )
                )
            identities.add(identity)
    problems.extend(_password_problems(data))
    return problems


def _password_problems(data: Mapping[str, Any]) -> list[tuple[Loc, str]]:
    """Security profiles 1 and 2 authenticate every OCPP charger with its own password."""
    server = data.get("ocpp")
    profile = server.get("security_profile", 0) if isinstance(server, Mapping) else 0
    if profile not in (1, 2):
        return []
    return [
        (
            ("chargers", index, "ocpp", "password"),
            f"[ocpp] security_profile {profile} needs a password (16-40 characters) "
            "for every OCPP charger",
        )
        for index, charger in _entries(data, "chargers")
        if isinstance(charger.get("ocpp"), Mapping) and "password" not in charger["ocpp"]
    ]


def _cycle_problems(
    parents: Mapping[str, str], node_ids: Mapping[str, Loc]
) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    for start in parents:
        seen = [start]
        current = parents[start]
        while current in parents and current not in seen:
            seen.append(current)
            current = parents[current]
        if current == start and start == min(seen):
            cycle = " -> ".join([*seen, start])
            problems.append(((*node_ids[start], "parent"), f"nodes form a cycle: {cycle}"))
    return problems
