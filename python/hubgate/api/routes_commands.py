"""Commands that need the control loop or OCPP: priorities, PV mode, start and stop charging."""

from __future__ import annotations

from collections.abc import Awaitable

from hubgate.api.context import ApiContext
from hubgate.api.deps import known_connector
from hubgate.api.models import Accepted, PriorityWrite, PvModeWrite, SessionWrite, StartCharging
from hubgate.api.routing import ApiError, Router
from hubgate.control.commands import CommandRejectedError
from hubgate.control.deadlines import need_text

router = Router(
    "commands",
    token=True,
    responses={
        401: "Missing or wrong Bearer token",
        403: "Writes are disabled (no token configured)",
        404: "No such connector",
        409: "The command cannot be carried out now (reason in `detail`)",
    },
)


async def _carry_out(command: Awaitable[None], detail: str) -> Accepted:
    try:
        await command
    except CommandRejectedError as error:
        raise ApiError(409, str(error)) from None
    return Accepted(detail=detail)


@router.put("/connectors/{charger}/{connector}/priority")
async def set_priority(
    ctx: ApiContext, charger: str, connector: int, body: PriorityWrite
) -> Accepted:
    """Move a connector to another priority tier (0-9, higher is served first)."""
    key = known_connector(ctx, charger, connector)
    command = ctx.commands.set_priority(key, body.priority)
    return await _carry_out(command, f"{key} priority {body.priority}")


@router.post("/connectors/{charger}/{connector}/start")
async def start_charging(
    ctx: ApiContext, charger: str, connector: int, body: StartCharging | None = None
) -> Accepted:
    """Ask the charger to start a session on this connector."""
    key = known_connector(ctx, charger, connector)
    id_tag = None if body is None else body.id_tag
    return await _carry_out(ctx.commands.start_charging(key, id_tag), f"{key} start requested")


@router.post("/connectors/{charger}/{connector}/stop")
async def stop_charging(ctx: ApiContext, charger: str, connector: int) -> Accepted:
    """Ask the charger to stop the session on this connector."""
    key = known_connector(ctx, charger, connector)
    return await _carry_out(ctx.commands.stop_charging(key), f"{key} stop requested")


@router.put("/connectors/{charger}/{connector}/pv-mode")
async def set_pv_mode(ctx: ApiContext, charger: str, connector: int, body: PvModeWrite) -> Accepted:
    """Charge this connector from PV surplus (and battery discharge) only, or from the grid."""
    key = known_connector(ctx, charger, connector)
    mode = "PV surplus only" if body.pv_mode else "grid"
    return await _carry_out(
        ctx.commands.set_pv_mode(key, body.pv_mode), f"{key} charges from {mode}"
    )


@router.put("/connectors/{charger}/{connector}/session")
async def set_session(
    ctx: ApiContext, charger: str, connector: int, body: SessionWrite
) -> Accepted:
    """Give the connector's session (or its next one) an energy need (or a state of charge
    to reach) and a departure: the allocator plans it to have its energy by then (least
    laxity first within the limits). Neither clears it."""
    key = known_connector(ctx, charger, connector)
    target = body.target()
    command = ctx.commands.set_session(
        key, body.energy_kwh, body.departure, max_current_a=body.max_current_a, target=target
    )
    detail = (
        f"{key} no deadline"
        if body.departure is None
        else f"{key} needs {need_text(body.energy_kwh, target)} by {body.departure.isoformat()}"
    )
    return await _carry_out(command, detail)
