"""The registers of hubgate's Modbus server: values read from the site, limits written as leases.

Sans-IO: `SiteRegisters.read` and `.write` take addresses and values and either
answer or raise `Refused` with the exception code to send. The layout comes
from `register_map` (the one table) and the site file (which nodes, connectors
and devices there are, in order).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import trio

from hubgate._core import Field, FieldError
from hubgate.config.model import GRID_NODE_ID, SiteConfig
from hubgate.control.limits import SITE, Lease, Limit, LimitBook, LimitInForce, LimitSource
from hubgate.modbus.errors import ExceptionCode
from hubgate.modbus_api.register_map import (
    BLOCKS,
    CONNECTOR_LIMITS,
    CONNECTOR_NEEDS,
    CONNECTORS,
    DEVICES,
    NODES,
    NOT_AVAILABLE,
    SITE_LIMIT,
    Block,
    ConnectorView,
    LeaseView,
    NeedView,
    Number,
    Point,
    SiteView,
    Table,
)
from hubgate.state import ConnectorState, DeviceHealth, NodeState, SiteState, StateHub


class Refused(Exception):  # noqa: N818 - a Modbus exception to answer, not a failure
    """The request cannot be served; answer with `code`."""

    def __init__(self, code: ExceptionCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code


@dataclass(frozen=True)
class SiteLayout:
    """Which subject each block instance shows, in site-file order."""

    nodes: tuple[str, ...]
    connectors: tuple[str, ...]
    devices: tuple[str, ...]

    @classmethod
    def from_site(cls, site: SiteConfig) -> SiteLayout:
        """`grid` and the nodes; every connector; chargers, meters, battery and PV."""
        devices = [c.id for c in site.chargers] + [m.id for m in site.meters]
        devices += [site.battery.id] if site.battery else []
        devices += [p.id for p in site.pv]
        layout = cls(
            nodes=(GRID_NODE_ID, *(n.id for n in site.nodes)),
            connectors=tuple(f"{c.id}#{k.id}" for c in site.chargers for k in c.connectors),
            devices=tuple(devices),
        )
        for block, count in (
            (NODES, len(layout.nodes)),
            (CONNECTORS, len(layout.connectors)),
            (DEVICES, len(layout.devices)),
        ):
            if count > block.capacity:
                raise ValueError(
                    f"the Modbus server map has room for {block.capacity} {block.name}s, "
                    f"the site has {count}"
                )
        return layout

    def instances(self, block: Block[Any]) -> int:
        """How many instances of `block` are in use."""
        if block is NODES:
            return len(self.nodes)
        if block in (CONNECTORS, CONNECTOR_LIMITS, CONNECTOR_NEEDS):
            return len(self.connectors)
        if block is DEVICES:
            return len(self.devices)
        return block.capacity


_FIELDS: dict[tuple[str, float], Field] = {}


def _field(point: Point[Any]) -> Field:
    key = (point.type, point.scale)
    if key not in _FIELDS:
        _FIELDS[key] = Field(0, point.type, scale=point.scale, sentinel=True)
    return _FIELDS[key]


def encode_point(point: Point[Any], value: Number) -> list[int]:
    """The registers of `point` holding `value`; not available when None or out of range."""
    if value is None:
        return NOT_AVAILABLE[point.type]
    try:
        return _field(point).encode(value)
    except FieldError:
        return NOT_AVAILABLE[point.type]


@dataclass
class _Snapshot:
    state: SiteState | None
    nodes: dict[str, NodeState]
    connectors: dict[str, ConnectorState]
    devices: dict[str, DeviceHealth]


NeedSink = Callable[[str, NeedView], None]
"""Takes a connector's session need written through the server (`energy_kwh` None: no need)."""


class SiteRegisters:
    """Reads the latest snapshot and the limit book; writes limits as leases and session
    needs to `needs`."""

    def __init__(
        self,
        layout: SiteLayout,
        hub: StateHub,
        limits: LimitBook,
        *,
        lease_s: float,
        caps: Mapping[str, Limit] | None = None,
        clock: Callable[[], float] = trio.current_time,
        wall_clock: Callable[[], float] = time.time,
        needs: NeedSink | None = None,
    ) -> None:
        """`needs`: where session needs go (None: the session registers refuse writes)."""
        self.layout = layout
        self.caps = caps or {}
        """The site file's own limit per target (`site_caps`): what is in force stays within."""
        self.lease_s = lease_s
        self._hub = hub
        self._limits = limits
        self._clock = clock
        self._wall_clock = wall_clock
        self._snapshot = _Snapshot(None, {}, {}, {})
        self._needs = needs
        self._written: dict[int, NeedView] = {}
        """Per connector index, the session need as written (what its registers read)."""

    def read(self, table: Table, address: int, count: int) -> list[int]:
        """`count` registers from `address`; `Refused` outside the blocks in use."""
        self._refresh()
        registers: list[int] = []
        end = address + count
        while address < end:
            block, index = self._locate(table, address)
            start = block.base + index * block.stride
            take = min(end, start + block.stride) - address
            image = self._image(block, index)
            registers += image[address - start : address - start + take]
            address += take
        return registers

    def write(self, address: int, values: list[int], *, origin: str) -> None:
        """Write whole writable points from `address`; each limit written becomes a lease."""
        writes: dict[tuple[str, int], dict[str, Number]] = {}
        position = address
        while position < address + len(values):
            block, index = self._locate(Table.HOLDING, position)
            offset = position - block.base - index * block.stride
            point = next((p for p in block.points if p.offset == offset), None)
            if point is None or not point.writable:
                raise Refused(
                    ExceptionCode.ILLEGAL_DATA_ADDRESS, f"register {position} is not writable"
                )
            if block is CONNECTOR_NEEDS and self._needs is None:
                raise Refused(ExceptionCode.ILLEGAL_FUNCTION, "no control loop takes session needs")
            raw = values[position - address : position - address + point.count]
            if len(raw) < point.count:
                raise Refused(
                    ExceptionCode.ILLEGAL_DATA_ADDRESS, f"write covers half of {point.name}"
                )
            value = _field(point).decode(raw)
            assert point.maximum is not None
            if value is not None and not 0 <= float(value) <= point.maximum:
                raise Refused(
                    ExceptionCode.ILLEGAL_DATA_VALUE,
                    f"{point.name} must be 0-{point.maximum:g} {point.unit}, got {value}",
                )
            writes.setdefault((block.name, index), {})[point.name] = (
                None if value is None else float(value)
            )
            position += point.count
        for (block_name, index), points in writes.items():
            if block_name == CONNECTOR_NEEDS.name:
                self._need(index, points)
                continue
            target = SITE if block_name == SITE_LIMIT.name else self.layout.connectors[index]
            self._lease_limit(target, points, origin)

    def _need(self, index: int, written: dict[str, Number]) -> None:
        """Hold what was written of a connector's need; hand the need on once it has an
        energy and a departure, or its end when the energy was written not available."""
        held = self._written.get(index, NeedView())
        view = NeedView(
            written.get("energy_need", held.energy_kwh),
            written.get("departure", held.departure),
            written.get("ev_max_current", held.ev_max_a),
        )
        cleared = "energy_need" in written and view.energy_kwh is None
        if self._needs is not None and (cleared or None not in (view.energy_kwh, view.departure)):
            self._needs(self.layout.connectors[index], view)
        self._written[index] = view

    def _refresh(self) -> None:
        state = self._hub.latest
        if state is not self._snapshot.state and state is not None:
            self._snapshot = _Snapshot(
                state,
                {n.id: n for n in state.nodes},
                {c.key: c for c in state.connectors},
                {d.id: d for d in state.devices},
            )

    def _locate(self, table: Table, address: int) -> tuple[Block[Any], int]:
        for block in BLOCKS:
            if block.table is table and block.base <= address:
                index = (address - block.base) // block.stride
                if index < self.layout.instances(block):
                    return block, index
        raise Refused(
            ExceptionCode.ILLEGAL_DATA_ADDRESS,
            f"{table.value} register {address} is outside the map of this site",
        )

    def _image(self, block: Block[Any], index: int) -> list[int]:
        subject = self._subject(block, index)
        image = [0] * block.stride
        for point in block.points:
            image[point.offset : point.offset + point.count] = encode_point(
                point, point.read(subject)
            )
        return image

    def _subject(self, block: Block[Any], index: int) -> object:
        snapshot, layout = self._snapshot, self.layout
        if block is NODES:
            return snapshot.nodes.get(layout.nodes[index])
        if block is CONNECTORS:
            key = layout.connectors[index]
            phases = self._in_force(key).limit.phase_a
            return ConnectorView(snapshot.connectors.get(key), min(phases) if phases else None)
        if block is DEVICES:
            return snapshot.devices.get(layout.devices[index])
        if block is SITE_LIMIT:
            return self._lease_view(SITE)
        if block is CONNECTOR_LIMITS:
            return self._lease_view(layout.connectors[index])
        if block is CONNECTOR_NEEDS:
            return self._written.get(index, NeedView())
        in_force = self._in_force(SITE)
        state = snapshot.state
        return SiteView(
            state=state,
            age_s=None if state is None else max(0.0, self._wall_clock() - state.at),
            nodes=len(layout.nodes),
            connectors=len(layout.connectors),
            devices=len(layout.devices),
            current_limit_a=min(in_force.limit.phase_a) if in_force.limit.phase_a else None,
            power_limit_kw=in_force.limit.power_kw,
            limit_sources=in_force.sources,
        )

    def _in_force(self, target: str) -> LimitInForce:
        return self._limits.in_force(target, self._clock()).within(self.caps.get(target))

    def _lease(self, target: str) -> Lease | None:
        self._limits.expire(self._clock())
        return next(
            (
                lease
                for lease in self._limits.leases()
                if lease.target == target and lease.source is LimitSource.MODBUS_SERVER
            ),
            None,
        )

    def _lease_view(self, target: str) -> LeaseView:
        lease = self._lease(target)
        if lease is None:
            return LeaseView(None, None, None, self.lease_s)
        phases = lease.limit.phase_a
        remaining = None if lease.expires_at is None else lease.expires_at - self._clock()
        return LeaseView(
            phases[0] if phases else None, lease.limit.power_kw, remaining, self.lease_s
        )

    def _lease_limit(self, target: str, written: dict[str, Number], origin: str) -> None:
        now = self._clock()
        held = self._lease_view(target)
        current = written.get("current_limit", held.current_a)
        power = written.get("power_limit", held.power_kw) if target == SITE else None
        if current is None and power is None:
            self._limits.clear(target, LimitSource.MODBUS_SERVER, now=now, origin=origin)
            return
        limit = Limit(
            phase_a=None if current is None else (current, current, current),
            power_kw=None if power is None else float(power),
        )
        self._limits.set(
            target, LimitSource.MODBUS_SERVER, limit, now=now, lease_s=self.lease_s, origin=origin
        )
