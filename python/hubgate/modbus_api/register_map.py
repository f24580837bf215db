"""The register map of hubgate's Modbus TCP server: the one source of its layout and its docs.

Each `Block` is a run of registers repeated once per node, connector or device
of the site (in site-file order), each `Point` one value in it with its type,
scale and where the value comes from. The server reads this table, and
`docs/modbus-server.md` is generated from it:

    python -m hubgate.modbus_api.register_map > docs/modbus-server.md
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, Literal, TypeVar

from hubgate.control.limits import LimitSource
from hubgate.state import ConnectorState, DeviceHealth, NodeState, SessionView, SiteState

MAP_VERSION = 1
"""Raised whenever an address below changes meaning."""

PointType = Literal["u16", "i16", "u32", "i32"]
Number = float | int | None
S = TypeVar("S")


class Table(StrEnum):
    """Which Modbus table a block lives in."""

    INPUT = "input"
    """Input registers: read with function 4."""
    HOLDING = "holding"
    """Holding registers: read with function 3, written with functions 6 and 16."""


@dataclass(frozen=True)
class Point(Generic[S]):
    """One value: `offset` registers into its block, raw = value / scale."""

    name: str
    offset: int
    type: PointType
    scale: float
    unit: str
    description: str
    read: Callable[[S], Number]
    maximum: float | None = None
    """Set on writable points: the largest value a client may write."""

    @property
    def count(self) -> int:
        """Registers the point occupies."""
        return 1 if self.type in ("u16", "i16") else 2

    @property
    def writable(self) -> bool:
        """Whether clients may write it."""
        return self.maximum is not None


@dataclass(frozen=True)
class Block(Generic[S]):
    """Points repeated every `stride` registers from `base`, once per subject."""

    name: str
    table: Table
    base: int
    stride: int
    capacity: int
    subjects: str
    description: str
    points: tuple[Point[S], ...]

    @property
    def end(self) -> int:
        """First address after the block's last instance."""
        return self.base + self.stride * self.capacity


@dataclass(frozen=True)
class SiteView:
    """What the site block shows: the latest snapshot and the limits in force."""

    state: SiteState | None
    age_s: float | None
    nodes: int
    connectors: int
    devices: int
    current_limit_a: float | None
    power_limit_kw: float | None
    limit_sources: tuple[LimitSource, ...]


@dataclass(frozen=True)
class ConnectorView:
    """One connector's snapshot and the current limit in force on it."""

    state: ConnectorState | None
    limit_a: float | None


@dataclass(frozen=True)
class NeedView:
    """A connector's session need as a controller wrote it through this server."""

    energy_kwh: float | None = None
    departure: float | None = None
    """Epoch s."""
    ev_max_a: float | None = None


@dataclass(frozen=True)
class LeaseView:
    """A limit written through this server, while its lease runs."""

    current_a: float | None
    power_kw: float | None
    remaining_s: float | None
    lease_s: float


CONNECTOR_STATUS_CODES: dict[str, int] = {
    "Available": 1,
    "Preparing": 2,
    "Charging": 3,
    "SuspendedEVSE": 4,
    "SuspendedEV": 5,
    "Finishing": 6,
    "Reserved": 7,
    "Unavailable": 8,
    "Faulted": 9,
    "Occupied": 10,
    "A": 11,
    "B": 12,
    "C": 13,
    "D": 14,
    "E": 15,
    "F": 16,
}
"""Connector status (OCPP status or IEC 61851 state) as a number; anything else is 0."""


def _sources_mask(sources: tuple[LimitSource, ...]) -> int:
    members = list(LimitSource)
    return sum(1 << members.index(s) for s in sources)


def _need(connector: ConnectorView) -> SessionView | None:
    """The connector's session, when it has a need."""
    state = connector.state
    session = None if state is None else state.session
    return session if session is not None and session.needed_kwh is not None else None


def _phase(values: tuple[float, float, float] | None, index: int) -> float | None:
    return None if values is None else values[index]


def _node_phase(
    attribute: Literal["measured_a", "commanded_a", "limit_a"], index: int
) -> Callable[[NodeState | None], Number]:
    def read(node: NodeState | None) -> Number:
        return None if node is None else _phase(getattr(node, attribute), index)

    return read


def _node_points() -> tuple[Point[NodeState | None], ...]:
    points: list[Point[NodeState | None]] = []
    for i in range(3):
        phase = f"L{i + 1}"
        points += [
            Point(f"measured_{phase.lower()}", 2 * i, "i32", 0.1, "A", f"Measured current {phase}",
                  _node_phase("measured_a", i)),
            Point(f"commanded_{phase.lower()}", 6 + 2 * i, "i32", 0.1, "A",
                  f"Sum of setpoints below the node, {phase}", _node_phase("commanded_a", i)),
            Point(f"limit_{phase.lower()}", 12 + 2 * i, "u32", 0.1, "A",
                  f"Current limit in force {phase}", _node_phase("limit_a", i)),
        ]  # fmt: skip
    points += [
        Point(
            "power_limit", 18, "u32", 0.1, "kW", "Power limit in force",
            lambda n: n.power_limit_kw if n else None,
        ),
        Point(
            "utilisation", 20, "u16", 0.1, "%", "Highest phase current over its limit",
            lambda n: None if n is None or (u := n.utilisation()) is None else 100 * u,
        ),
        Point(
            "budget_share", 21, "u16", 0.1, "%", "Share of the limit usable (below 100 while its meter is lost)",
            lambda n: 100 * n.budget_share if n else None,
        ),
    ]  # fmt: skip
    return tuple(sorted(points, key=lambda p: p.offset))


SITE = Block[SiteView](
    "site", Table.INPUT, 0, 20, 1, "the site",
    "The map version, the snapshot's freshness and the site-wide limits in force.",
    (
        Point("map_version", 0, "u16", 1, "", "Version of this register map", lambda _s: MAP_VERSION),
        Point("state_available", 1, "u16", 1, "", "1 once the control loop has published a snapshot",
              lambda s: int(s.state is not None)),
        Point("cycle", 2, "u32", 1, "", "Control cycle number of the snapshot (wraps at 2^32)",
              lambda s: s.state.cycle % 2**32 if s.state else None),
        Point("snapshot_age", 4, "u16", 0.1, "s", "Age of the snapshot", lambda s: s.age_s),
        Point("nodes", 5, "u16", 1, "", "Number of node blocks in use (the grid connection first)",
              lambda s: s.nodes),
        Point("connectors", 6, "u16", 1, "", "Number of connector blocks in use", lambda s: s.connectors),
        Point("devices", 7, "u16", 1, "", "Number of device blocks in use", lambda s: s.devices),
        Point("current_limit", 8, "u32", 0.1, "A",
              "Site current limit in force (lowest phase): the lowest of every source's lease and "
              "the site file's own limit (less its safety margin)",
              lambda s: s.current_limit_a),
        Point("power_limit", 10, "u32", 0.1, "kW",
              "Site power limit in force: the lowest of every source's lease and the site file's "
              "(less its safety margin)",
              lambda s: s.power_limit_kw),
        Point("limit_sources", 12, "u16", 1, "",
              "Bit mask of the sources that limit the site (config: the site file's own limit binds): "
              + ", ".join(f"bit {i} {s.value}" for i, s in enumerate(LimitSource)),
              lambda s: _sources_mask(s.limit_sources)),
    ),
)  # fmt: skip

NODES = Block[NodeState | None](
    "node", Table.INPUT, 100, 30, 64, "nodes: `grid` first, then the site file's nodes",
    "Per-phase measurements, setpoint sums and limits of each point of the electrical tree.",
    _node_points(),
)  # fmt: skip

CONNECTORS = Block[ConnectorView](
    "connector", Table.INPUT, 2100, 20, 1000, "connectors, charger by charger in site-file order",
    "State, setpoint and measurements of each connector.",
    (
        Point("status", 0, "u16", 1, "", "Status code (table below)",
              lambda c: CONNECTOR_STATUS_CODES.get(c.state.status, 0) if c.state else None),
        Point("phases", 1, "u16", 1, "", "Phases in use", lambda c: c.state.phases if c.state else None),
        Point("setpoint", 2, "u16", 0.1, "A", "Current setpoint", lambda c: c.state.setpoint_a if c.state else None),
        Point("measured_l1", 3, "i16", 0.1, "A", "Measured current L1",
              lambda c: _phase(c.state.measured_a, 0) if c.state else None),
        Point("measured_l2", 4, "i16", 0.1, "A", "Measured current L2",
              lambda c: _phase(c.state.measured_a, 1) if c.state else None),
        Point("measured_l3", 5, "i16", 0.1, "A", "Measured current L3",
              lambda c: _phase(c.state.measured_a, 2) if c.state else None),
        Point("power", 6, "i32", 0.001, "kW", "Active power", lambda c: c.state.power_kw if c.state else None),
        Point("energy", 8, "u32", 0.001, "kWh", "Energy of the session",
              lambda c: c.state.energy_kwh if c.state else None),
        Point("soc", 10, "u16", 1, "%", "State of charge, if the vehicle reports it",
              lambda c: c.state.soc_percent if c.state else None),
        Point("priority", 11, "u16", 1, "", "Priority tier", lambda c: c.state.priority if c.state else None),
        Point("limit", 12, "u16", 0.1, "A",
              "Current limit in force on the connector: the lowest of every source's lease and its maximum",
              lambda c: c.limit_a),
        Point("at_risk", 13, "u16", 1, "",
              "With a need: 1 when the session will not have its energy by its departure, else 0",
              lambda c: None if (s := _need(c)) is None else int(s.at_risk)),
        Point("energy_needed", 14, "u32", 0.001, "kWh",
              "Energy the session needs in all (from its start; `energy` is what it has)",
              lambda c: None if (s := _need(c)) is None else s.needed_kwh),
        Point("departure", 16, "u32", 1, "s", "Departure of the session, Unix time (s since 1970 UTC)",
              lambda c: None if (s := _need(c)) is None or s.departure is None else s.departure.timestamp()),
        Point("shortfall", 18, "u32", 0.001, "kWh",
              "What no schedule within the site's limits delivers by the departure",
              lambda c: None if (s := _need(c)) is None else s.shortfall_kwh),
    ),
)  # fmt: skip

DEVICES = Block[DeviceHealth | None](
    "device", Table.INPUT, 22100, 10, 1000, "devices: chargers, meters, battery, PV in site-file order",
    "Reachability and request statistics of each device hubgate talks to.",
    (
        Point("reachable", 0, "u16", 1, "", "1 reachable, 0 not", lambda d: int(d.reachable) if d else None),
        Point("requests", 1, "u32", 1, "", "Requests sent (wraps at 2^32)", lambda d: d.requests % 2**32 if d else None),
        Point("errors", 3, "u32", 1, "", "Requests failed (wraps at 2^32)", lambda d: d.errors % 2**32 if d else None),
        Point("latency_p50", 5, "u16", 0.1, "ms", "Median latency", lambda d: d.latency_p50_ms if d else None),
        Point("latency_p99", 6, "u16", 0.1, "ms", "99th percentile latency", lambda d: d.latency_p99_ms if d else None),
        Point("last_ok_age", 7, "u16", 0.1, "s", "Time since the last good answer",
              lambda d: d.last_ok_age_s if d else None),
    ),
)  # fmt: skip

SITE_LIMIT = Block[LeaseView](
    "site-limit", Table.HOLDING, 0, 10, 1, "the site",
    "Site limits written by a controller. Each write starts a lease of `lease_s` seconds "
    "(site file, `[modbus_server]`); when it runs out, the limit is gone and the configured "
    "limits apply again. Write the value again before then to keep it. Writing the "
    "not-available value clears the limit at once.",
    (
        Point("current_limit", 0, "u32", 0.1, "A",
              "Current limit per phase (all phases), as written: what is in force never exceeds "
              "the site file's limit (input register 8)",
              lambda v: v.current_a, maximum=100_000),
        Point("power_limit", 2, "u32", 0.1, "kW", "Active power limit", lambda v: v.power_kw,
              maximum=1_000_000),
        Point("lease_remaining", 4, "u32", 0.1, "s", "Time until the written limits lapse",
              lambda v: v.remaining_s),
        Point("lease_length", 6, "u32", 0.1, "s", "Lease length of a write", lambda v: v.lease_s),
    ),
)  # fmt: skip

CONNECTOR_LIMITS = Block[LeaseView](
    "connector-limit", Table.HOLDING, 100, 4, 1000, "connectors, in the same order as the connector blocks",
    "Per-connector current limits written by a controller, leased like the site limit.",
    (
        Point("current_limit", 0, "u16", 0.1, "A", "Current limit per phase", lambda v: v.current_a,
              maximum=1000),
        Point("lease_remaining", 1, "u32", 0.1, "s", "Time until the written limit lapses",
              lambda v: v.remaining_s),
    ),
)  # fmt: skip

CONNECTOR_NEEDS = Block[NeedView](
    "connector-session", Table.HOLDING, 4100, 6, 1000, "connectors, in the same order as the connector blocks",
    "Session needs written by the fleet's system (a depot PLC): the energy the vehicle needs from "
    "now on, its departure and, if known, the most its EV takes. Write the energy and the "
    "departure together (function 16: 4 registers from the instance's start, 5 with the EV "
    "maximum); once both are held the need applies to the session now plugged in, or to the "
    "next one, as `PUT /api/v1/connectors/{charger}/{connector}/session` does, and the session "
    "is planned to have it by its departure (input registers `energy_needed` to `shortfall` "
    "show how it goes). Writing the not-available value to `energy_need` takes the need away. "
    "A need has no lease: it ends with its session. These registers read back as written.",
    (
        Point("energy_need", 0, "u32", 0.1, "kWh", "Energy the vehicle needs from now on",
              lambda v: v.energy_kwh, maximum=100_000),
        Point("departure", 2, "u32", 1, "s", "Departure, Unix time (s since 1970-01-01 UTC)",
              lambda v: v.departure, maximum=4_294_967_294),
        Point("ev_max_current", 4, "u16", 0.1, "A",
              "The most the EV takes per phase (not available: not told)",
              lambda v: v.ev_max_a, maximum=1000),
    ),
)  # fmt: skip

BLOCKS: tuple[Block[Any], ...] = (
    SITE,
    NODES,
    CONNECTORS,
    DEVICES,
    SITE_LIMIT,
    CONNECTOR_LIMITS,
    CONNECTOR_NEEDS,
)
"""Every block of the map."""

NOT_AVAILABLE: dict[PointType, list[int]] = {
    "u16": [0xFFFF],
    "i16": [0x8000],
    "u32": [0xFFFF, 0xFFFF],
    "i32": [0x8000, 0x0000],
}
"""What a point holds when its value is unknown; writing it to a limit clears the limit."""


def render_markdown() -> str:
    """docs/modbus-server.md."""
    out = [
        "# Modbus TCP server",
        "",
        "<!-- Generated from python/hubgate/modbus_api/register_map.py by "
        "`python -m hubgate.modbus_api.register_map > docs/modbus-server.md`; do not edit. -->",
        "",
        "hubgate serves its site to a PLC, SCADA or grid-operator box over Modbus TCP "
        "(`[modbus_server]` in the site file: `host`, `port`, `unit`, `allow_writes_from`, "
        "`allow_reads_from`, `lease_s`, `max_connections`, `idle_timeout_s`).",
        "",
        "- Addresses are the 0-based numbers carried in requests (mbpoll: `-0`).",
        "- 32-bit values are big-endian: high word first (ABCD).",
        "- value = raw * scale; a value that is not available reads as "
        "`0xFFFF` (u16), `0x8000` (i16), `0xFFFFFFFF` (u32) or `0x80000000` (i32).",
        "- Requests go to the configured unit id (or 255); others get exception 10 "
        "(Gateway Path Unavailable).",
        "- Writes come only from `allow_writes_from` (addresses or networks); others get "
        "exception 1 (Illegal Function). With `allow_reads_from`, a client in neither list "
        "is disconnected as soon as it connects (a client that may write may read).",
        "- At most `max_connections` (16) connections; one more closes the connection that "
        "sent nothing for longest, so idle connections cannot lock a polling PLC out. A "
        "connection that sends no request for `idle_timeout_s` (60 s) is closed. When the "
        "process runs out of file descriptors, accepting backs off (10 ms doubling to 1 s) and "
        "closes the quietest connection, with one log line per 10 s.",
        "- Limits in force (site, connector) are the lowest of every source's lease and the "
        "site file's own limit: a controller writing 500 A on a site of 80 A reads 80 A in "
        "force (and its 500 A in the holding registers it wrote).",
        "- Exceptions: 1 for an unsupported function (function code 0 and 0x80 and above "
        "included: the answer is the code with 0x80 set, then exception 1) or a refused "
        "write, 2 for an address "
        "outside the map or a write that touches a read-only register or half a 32-bit value, "
        "3 for a bad count or a value above the point's maximum.",
        "- Instance *i* (0-based) of a block starts at base + *i* * stride. "
        f"This is map version {MAP_VERSION}.",
        "",
    ]
    for block in BLOCKS:
        function = "4" if block.table is Table.INPUT else "3 (read), 6 and 16 (write)"
        out += [
            f"## {block.name}",
            "",
            block.description,
            "",
            f"{block.table.value.title()} registers, function {function}; base {block.base}, "
            f"stride {block.stride}, up to {block.capacity} ({block.subjects}): "
            f"addresses {block.base}-{block.end - 1}.",
            "",
            "| offset | name | type | scale | unit | access | description |",
            "|---:|---|---|---:|---|---|---|",
        ]
        for p in block.points:
            access = f"read/write (max {p.maximum:g})" if p.writable else "read"
            out.append(
                f"| {p.offset} | `{p.name}` | {p.type} | {p.scale:g} | {p.unit} | {access} "
                f"| {p.description} |"
            )
        out.append("")
    out += [
        "## Connector status codes",
        "",
        "| code | status |",
        "|---:|---|",
        "| 0 | unknown |",
        *(f"| {code} | {status} |" for status, code in CONNECTOR_STATUS_CODES.items()),
        "",
    ]
    return "\n".join(out)


if __name__ == "__main__":
    sys.stdout.write(render_markdown())
