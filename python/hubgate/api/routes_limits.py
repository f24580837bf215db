"""Limits in force and where each comes from; API leases on the site, nodes and connectors."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from hubgate.api.context import ApiContext
from hubgate.api.deps import known_connector
from hubgate.api.models import (
    AuditView,
    DecisionView,
    GridSampleView,
    LeaseView,
    LimitWrite,
    TargetLimits,
)
from hubgate.api.routing import ApiError, Request, Router
from hubgate.control.limits import SITE, LimitSource

router = Router("limits")
writes = Router(
    "limits",
    token=True,
    responses={
        401: "Missing or wrong Bearer token",
        403: "Writes are disabled (no token configured)",
        404: "No such node or connector",
    },
)

Kind = Literal["site", "node", "connector"]


def _target(ctx: ApiContext, target: str, kind: Kind) -> TargetLimits:
    now = ctx.clock()
    in_force = ctx.limits.in_force(target, now).within(ctx.caps.get(target))
    leases = tuple(
        LeaseView.of(lease, now) for lease in ctx.limits.leases() if lease.target == target
    )
    return TargetLimits.of(target, kind, in_force, leases)


def _origin(request: Request) -> str:
    return f"api {request.client_host}" if request.client_host else "api"


def _node(ctx: ApiContext, node_id: str) -> str:
    if node_id not in ctx.node_ids:
        hint = "; the grid connection is the site target" if node_id == "grid" else ""
        raise ApiError(404, f"no node {node_id!r}{hint}")
    return node_id


def _set(
    ctx: ApiContext, request: Request, target: str, kind: Kind, body: LimitWrite
) -> TargetLimits:
    ctx.limits.set(
        target,
        LimitSource.API,
        body.limit(),
        now=ctx.clock(),
        lease_s=body.lease_s,
        origin=_origin(request),
    )
    return _target(ctx, target, kind)


def _clear(ctx: ApiContext, request: Request, target: str, kind: Kind) -> TargetLimits:
    ctx.limits.clear(target, LimitSource.API, now=ctx.clock(), origin=_origin(request))
    return _target(ctx, target, kind)


@router.get("/limits")
async def list_limits(ctx: ApiContext) -> list[TargetLimits]:
    """The limit in force on the site, every node and every connector, with all leases."""
    return [
        _target(ctx, SITE, "site"),
        *(_target(ctx, node, "node") for node in ctx.node_ids),
        *(_target(ctx, key, "connector") for key in ctx.connector_keys),
    ]


@router.get("/audit")
async def list_audit(
    ctx: ApiContext, last: Annotated[int, Field(ge=1, le=10_000)] = 100
) -> list[AuditView]:
    """The newest changes of limits from every source, oldest first."""
    return [AuditView.of(entry) for entry in ctx.limits.audit(last)]


@router.get("/decisions")
async def list_decisions(
    ctx: ApiContext, last: Annotated[int, Field(ge=1, le=3_600)] = 10
) -> list[DecisionView]:
    """The newest control-cycle decisions, oldest first."""
    return [DecisionView.of(record) for record in ctx.decisions.recent(last)]


@router.get("/history")
async def grid_history(
    ctx: ApiContext, last: Annotated[int, Field(ge=1, le=3_600)] = 300
) -> list[GridSampleView]:
    """The grid connection over the newest cycles, oldest first: current per phase, the sum
    of setpoints and the limit in force with its source (what the dashboard's chart starts
    from)."""
    return [GridSampleView.of(cycle, grid) for cycle, grid in ctx.decisions.grid_history(last)]


@writes.put("/limits/site")
async def set_site_limit(ctx: ApiContext, request: Request, body: LimitWrite) -> TargetLimits:
    """Lease a limit on the grid connection; the most restrictive source wins."""
    return _set(ctx, request, SITE, "site", body)


@writes.delete("/limits/site")
async def clear_site_limit(ctx: ApiContext, request: Request) -> TargetLimits:
    """Drop the API's lease on the grid connection."""
    return _clear(ctx, request, SITE, "site")


@writes.put("/limits/nodes/{node_id}")
async def set_node_limit(
    ctx: ApiContext, request: Request, node_id: str, body: LimitWrite
) -> TargetLimits:
    """Lease a limit on one node."""
    return _set(ctx, request, _node(ctx, node_id), "node", body)


@writes.delete("/limits/nodes/{node_id}")
async def clear_node_limit(ctx: ApiContext, request: Request, node_id: str) -> TargetLimits:
    """Drop the API's lease on one node."""
    return _clear(ctx, request, _node(ctx, node_id), "node")


@writes.put("/limits/connectors/{charger}/{connector}")
async def set_connector_limit(
    ctx: ApiContext, request: Request, charger: str, connector: int, body: LimitWrite
) -> TargetLimits:
    """Lease a limit on one connector."""
    return _set(ctx, request, known_connector(ctx, charger, connector), "connector", body)


@writes.delete("/limits/connectors/{charger}/{connector}")
async def clear_connector_limit(
    ctx: ApiContext, request: Request, charger: str, connector: int
) -> TargetLimits:
    """Drop the API's lease on one connector."""
    return _clear(ctx, request, known_connector(ctx, charger, connector), "connector")
