"""Reads of the live site state: snapshot, nodes, connectors, devices, OCPP chargers,
events, health."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, status

from hubgate.api.context import connector_key
from hubgate.api.deps import Ctx
from hubgate.api.models import Health
from hubgate.state import (
    ChargerInfo,
    ConnectorState,
    DeviceHealth,
    Event,
    EventLevel,
    NodeState,
    SiteState,
)

router = APIRouter(tags=["state"])

Responses = dict[int | str, dict[str, Any]]

NO_STATE: Responses = {503: {"description": "No control cycle has run yet"}}
STALE_CYCLES = 3
"""Health is degraded when the newest snapshot is older than this many cycles."""
NOT_FOUND: Responses = {404: {"description": "No such node, connector or device"}}


class NodeView(NodeState):
    """A node with its utilisation: highest phase current over its limit."""

    utilisation_ratio: float | None


def _latest(ctx: Ctx) -> SiteState:
    state = ctx.hub.latest
    if state is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "no control cycle has run yet")
    return state


def _view(node: NodeState) -> NodeView:
    return NodeView(**node.model_dump(), utilisation_ratio=node.utilisation())


@router.get("/state", responses=NO_STATE)
async def get_state(ctx: Ctx) -> SiteState:
    """The latest snapshot of the whole site."""
    return _latest(ctx)


@router.get("/nodes", responses=NO_STATE)
async def list_nodes(ctx: Ctx) -> list[NodeView]:
    """Every node of the tree, the grid connection first."""
    return [_view(node) for node in _latest(ctx).nodes]


@router.get("/nodes/{node_id}", responses=NO_STATE | NOT_FOUND)
async def get_node(ctx: Ctx, node_id: str) -> NodeView:
    """One node (`grid` for the connection)."""
    try:
        return _view(_latest(ctx).node(node_id))
    except KeyError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no node {node_id!r}") from None


@router.get("/connectors", responses=NO_STATE)
async def list_connectors(ctx: Ctx) -> tuple[ConnectorState, ...]:
    """Every connector: status, setpoint, measurement, reason and binding constraint."""
    return _latest(ctx).connectors


@router.get("/connectors/{charger}/{connector}", responses=NO_STATE | NOT_FOUND)
async def get_connector(ctx: Ctx, charger: str, connector: int) -> ConnectorState:
    """One connector."""
    key = connector_key(charger, connector)
    for state in _latest(ctx).connectors:
        if state.key == key:
            return state
    raise HTTPException(status.HTTP_404_NOT_FOUND, f"no connector {key!r}")


@router.get("/devices", responses=NO_STATE)
async def list_devices(ctx: Ctx) -> tuple[DeviceHealth, ...]:
    """Every device with its reachability and request statistics."""
    return _latest(ctx).devices


@router.get("/chargers")
async def list_chargers(ctx: Ctx) -> tuple[ChargerInfo, ...]:
    """Every OCPP charger: capabilities, provisioning and whether each connector follows
    its limits ("not following" with the evidence)."""
    return ctx.chargers()


@router.get("/chargers/{charger}", responses=NOT_FOUND)
async def get_charger(ctx: Ctx, charger: str) -> ChargerInfo:
    """One OCPP charger."""
    for info in ctx.chargers():
        if info.id == charger:
            return info
    raise HTTPException(status.HTTP_404_NOT_FOUND, f"no OCPP charger {charger!r}")


@router.get("/events", responses=NO_STATE)
async def list_events(ctx: Ctx, level: EventLevel | None = None) -> list[Event]:
    """Recent events, newest last; only those of `level` when given."""
    return [e for e in _latest(ctx).events if level is None or e.level == level]


@router.get("/health")
async def get_health(ctx: Ctx) -> Health:
    """`starting` before the first cycle; `degraded` when cycles stall or devices are lost."""
    state = ctx.hub.latest
    if state is None:
        return Health(status="starting", cycle=None, snapshot_age_s=None, devices=0, unreachable=())
    unreachable = tuple(d.id for d in state.devices if not d.reachable)
    age = max(0.0, ctx.wall_clock() - state.at)
    stale = age > STALE_CYCLES * ctx.site.control.cycle_s
    return Health(
        status="degraded" if unreachable or stale else "ok",
        cycle=state.cycle,
        snapshot_age_s=age,
        devices=len(state.devices),
        unreachable=unreachable,
    )
