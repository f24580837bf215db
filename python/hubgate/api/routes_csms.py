"""The CSMS proxy's operator decisions: transactions held since the CSMS refused them."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, status

from hubgate.api.context import ApiContext
from hubgate.api.deps import Ctx, require_token
from hubgate.api.models import HoldView, ReleaseHold
from hubgate.cloud.proxy import CsmsProxy

router = APIRouter(tags=["csms"])
writes = APIRouter(
    tags=["csms"],
    dependencies=[Depends(require_token)],
    responses={
        401: {"description": "Missing or wrong Bearer token"},
        403: {"description": "Writes are disabled (no token configured)"},
        404: {"description": "No CSMS configured, or no such held transaction"},
        409: {
            "description": "The decision cannot be carried out (reason in `detail`), or this"
            " gateway is a cluster's standby"
        },
    },
)


def _proxy(ctx: ApiContext) -> CsmsProxy:
    if ctx.leader_csms is not None:
        leading = ctx.leader_csms()
        if leading is None:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                "this gateway is the cluster's standby: held transactions are decided on the"
                " leader (its decisions reach this gateway's queue copy)",
            )
        return leading
    if ctx.csms is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, "no [csms] configured: hubgate is the chargers' CSMS"
        )
    return ctx.csms


@router.get("/csms/holds")
async def list_holds(ctx: Ctx) -> list[HoldView]:
    """Transactions whose messages wait for an operator: the CSMS refused their start."""
    return [HoldView.of(hold) for hold in await _proxy(ctx).holds()]


@writes.post("/csms/holds/{identity}/{transaction}/release")
async def release_hold(
    ctx: Ctx, identity: str, transaction: str, body: ReleaseHold | None = None
) -> HoldView:
    """Send the held transaction's messages to the CSMS (a 1.6 one under `transaction_id`)."""
    given = None if body is None else body.transaction_id
    try:
        return HoldView.of(await _proxy(ctx).release(identity, transaction, given))
    except KeyError as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(error.args[0])) from None
    except ValueError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None


@writes.post("/csms/holds/{identity}/{transaction}/discard")
async def discard_hold(ctx: Ctx, identity: str, transaction: str) -> HoldView:
    """Never send the held transaction's messages (they are kept as dead letters)."""
    try:
        return HoldView.of(await _proxy(ctx).discard(identity, transaction))
    except KeyError as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(error.args[0])) from None
