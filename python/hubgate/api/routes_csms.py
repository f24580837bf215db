"""The CSMS proxy's operator decisions: transactions held since the CSMS refused them."""

from __future__ import annotations

from hubgate.api.context import ApiContext
from hubgate.api.models import HoldView, ReleaseHold
from hubgate.api.routing import ApiError, Router
from hubgate.cloud.proxy import CsmsProxy

router = Router("csms")
writes = Router(
    "csms",
    token=True,
    responses={
        401: "Missing or wrong Bearer token",
        403: "Writes are disabled (no token configured)",
        404: "No CSMS configured, or no such held transaction",
        409: "The decision cannot be carried out (reason in `detail`), or this gateway is a cluster's standby",
    },
)


def _proxy(ctx: ApiContext) -> CsmsProxy:
    if ctx.leader_csms is not None:
        leading = ctx.leader_csms()
        if leading is None:
            raise ApiError(
                409,
                "this gateway is the cluster's standby: held transactions are decided on the"
                " leader (its decisions reach this gateway's queue copy)",
            )
        return leading
    if ctx.csms is None:
        raise ApiError(404, "no [csms] configured: hubgate is the chargers' CSMS")
    return ctx.csms


@router.get("/csms/holds")
async def list_holds(ctx: ApiContext) -> list[HoldView]:
    """Transactions whose messages wait for an operator: the CSMS refused their start."""
    return [HoldView.of(hold) for hold in await _proxy(ctx).holds()]


@writes.post("/csms/holds/{identity}/{transaction}/release")
async def release_hold(
    ctx: ApiContext, identity: str, transaction: str, body: ReleaseHold | None = None
) -> HoldView:
    """Send the held transaction's messages to the CSMS (a 1.6 one under `transaction_id`)."""
    given = None if body is None else body.transaction_id
    try:
        return HoldView.of(await _proxy(ctx).release(identity, transaction, given))
    except KeyError as error:
        raise ApiError(404, str(error.args[0])) from None
    except ValueError as error:
        raise ApiError(409, str(error)) from None


@writes.post("/csms/holds/{identity}/{transaction}/discard")
async def discard_hold(ctx: ApiContext, identity: str, transaction: str) -> HoldView:
    """Never send the held transaction's messages (they are kept as dead letters)."""
    try:
        return HoldView.of(await _proxy(ctx).discard(identity, transaction))
    except KeyError as error:
        raise ApiError(404, str(error.args[0])) from None
