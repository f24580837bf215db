"""Reads of the live site state: snapshot, nodes, connectors, devices, OCPP chargers,
events, health."""

from __future__ import annotations

import csv
import io
import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, WithJsonSchema

from hubgate.api.context import ApiContext, connector_key
from hubgate.api.models import Health
from hubgate.api.routing import ApiError, Response, Router
from hubgate.records.store import EventQuery, SessionQuery
from hubgate.state import (
    ChargerInfo,
    ChargingSession,
    ConnectorState,
    DeviceHealth,
    Event,
    EventCategory,
    EventLevel,
    NodeState,
    SiteState,
)

router = Router("state")

Responses = dict[int | str, dict[str, Any]]

NO_STATE: Responses = {503: {"description": "No control cycle has run yet"}}
STALE_CYCLES = 3
"""Health is degraded when the newest snapshot is older than this many cycles."""
NOT_FOUND: Responses = {404: {"description": "No such node, connector or device"}}


class NodeView(NodeState):
    """A node with its utilisation: highest phase current over its limit."""

    utilisation_ratio: float | None


def _latest(ctx: ApiContext) -> SiteState:
    state = ctx.hub.latest
    if state is None:
        raise ApiError(503, "no control cycle has run yet")
    return state


def _view(node: NodeState) -> NodeView:
    return NodeView(**node.model_dump(), utilisation_ratio=node.utilisation())


@router.get("/state", responses=NO_STATE)
async def get_state(ctx: ApiContext) -> SiteState:
    """The latest snapshot of the whole site."""
    return _latest(ctx)


@router.get("/nodes", responses=NO_STATE)
async def list_nodes(ctx: ApiContext) -> list[NodeView]:
    """Every node of the tree, the grid connection first."""
    return [_view(node) for node in _latest(ctx).nodes]


@router.get("/nodes/{node_id}", responses=NO_STATE | NOT_FOUND)
async def get_node(ctx: ApiContext, node_id: str) -> NodeView:
    """One node (`grid` for the connection)."""
    try:
        return _view(_latest(ctx).node(node_id))
    except KeyError:
        raise ApiError(404, f"no node {node_id!r}") from None


@router.get("/connectors", responses=NO_STATE)
async def list_connectors(ctx: ApiContext) -> tuple[ConnectorState, ...]:
    """Every connector: status, setpoint, measurement, reason and binding constraint."""
    return _latest(ctx).connectors


@router.get("/connectors/{charger}/{connector}", responses=NO_STATE | NOT_FOUND)
async def get_connector(ctx: ApiContext, charger: str, connector: int) -> ConnectorState:
    """One connector."""
    key = connector_key(charger, connector)
    for state in _latest(ctx).connectors:
        if state.key == key:
            return state
    raise ApiError(404, f"no connector {key!r}")


@router.get("/devices", responses=NO_STATE)
async def list_devices(ctx: ApiContext) -> tuple[DeviceHealth, ...]:
    """Every device with its reachability and request statistics."""
    return _latest(ctx).devices


@router.get("/chargers")
async def list_chargers(ctx: ApiContext) -> tuple[ChargerInfo, ...]:
    """Every OCPP charger: capabilities, provisioning and whether each connector follows
    its limits ("not following" with the evidence)."""
    return ctx.chargers()


@router.get("/chargers/{charger}", responses=NOT_FOUND)
async def get_charger(ctx: ApiContext, charger: str) -> ChargerInfo:
    """One OCPP charger."""
    for info in ctx.chargers():
        if info.id == charger:
            return info
    raise ApiError(404, f"no OCPP charger {charger!r}")


def _since(value: object) -> object:
    """Seconds since the epoch, or an ISO 8601 time (UTC unless it says otherwise)."""
    if not isinstance(value, str):
        return value
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if math.isfinite(seconds):
            return seconds
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("give seconds since the epoch or an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


Since = Annotated[
    float,
    BeforeValidator(_since),
    WithJsonSchema({"anyOf": [{"type": "number"}, {"type": "string", "format": "date-time"}]}),
]


@router.get("/events")
async def list_events(
    ctx: ApiContext,
    since: Annotated[
        Since | None,
        Field(description="Events at or after this time: seconds since the epoch or ISO 8601"),
    ] = None,
    severity: Annotated[
        EventLevel, Field(description="The least severity: warning gives warnings and alarms")
    ] = EventLevel.INFO,
    category: EventCategory | None = None,
    after: Annotated[int, Field(ge=0, le=2**53, description="Only events with a larger id")] = 0,
    limit: Annotated[int, Field(ge=1, le=10_000)] = 100,
) -> list[Event]:
    """The event log, newest last: the newest `limit` events that match."""
    query = EventQuery(
        since=since, severity=severity, category=category, after_id=after, limit=limit
    )
    return ctx.events.query(query)


SESSION_COLUMNS = (
    "id",
    "connector",
    "transaction_id",
    "id_token",
    "started_at",
    "stopped_at",
    "energy_kwh",
    "peak_current_a",
    "max_setpoint_a",
    "min_setpoint_a",
    "limited_s",
    "stop_reason",
)


def sessions_csv(sessions: list[ChargingSession]) -> str:
    """One row per session, times in UTC ISO 8601, the limiting reasons as `reason=s;...`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(SESSION_COLUMNS)
    for s in sessions:
        writer.writerow(
            (
                s.id,
                s.connector,
                s.transaction_id or "",
                s.id_token or "",
                _iso(s.started_at),
                "" if s.stopped_at is None else _iso(s.stopped_at),
                f"{s.energy_kwh:.3f}",
                f"{s.peak_current_a:.1f}",
                "" if s.max_setpoint_a is None else f"{s.max_setpoint_a:.1f}",
                "" if s.min_setpoint_a is None else f"{s.min_setpoint_a:.1f}",
                ";".join(f"{k}={v:.0f}" for k, v in s.limited_s.items()),
                s.stop_reason or "",
            )
        )
    return out.getvalue()


def _iso(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).isoformat(timespec="seconds")


@router.get(
    "/sessions",
    response=list[ChargingSession],
    content={"text/csv": {"schema": {"type": "string"}}},
)
async def list_sessions(
    ctx: ApiContext,
    connector: Annotated[str | None, Field(description="`charger-id#connector-id`")] = None,
    id_token: str | None = None,
    since: Annotated[Since | None, Field(description="Started at or after this time")] = None,
    until: Annotated[Since | None, Field(description="Started before this time")] = None,
    open_only: Annotated[bool, Field(alias="open", description="Only those going on")] = False,
    limit: Annotated[int, Field(ge=1, le=100_000)] = 100,
    format: Annotated[Literal["json", "csv"], Field(description="csv: a spreadsheet")] = "json",
) -> list[ChargingSession] | Response:
    """Charging sessions, oldest first: the newest `limit` that match (open ones as they
    stand at their last write, every 30 s)."""
    query = SessionQuery(connector, id_token, since, until, open_only, limit)
    sessions = ctx.events.store.sessions(query)
    if format == "csv":
        return Response(
            sessions_csv(sessions).encode(),
            "text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="sessions.csv"'},
        )
    return sessions


@router.get("/health")
async def get_health(ctx: ApiContext) -> Health:
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
