"""The id tokens that may charge at a site without a CSMS (`[authorization]`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import trio
from pydantic import Field

from hubgate.api.context import ApiContext
from hubgate.api.models import Accepted, TokenView, TokenWrite
from hubgate.api.routing import ApiError, Router
from hubgate.config.services import AuthToken
from hubgate.config.tokens import TokenBook

router = Router("authorization")
writes = Router(
    "authorization",
    token=True,
    responses={
        401: "Missing or wrong Bearer token",
        403: "Writes are disabled (no token configured)",
        404: "No [authorization] table, or no such token in the tokens file",
        409: "The change cannot be made here (reason in `detail`)",
    },
)

TokenId = Annotated[
    str,
    Field(min_length=1, max_length=36, pattern=r"^[!-~]+$", description="The idTag / idToken"),
]


def _book(ctx: ApiContext) -> TokenBook:
    if ctx.tokens is None:
        raise ApiError(404, "no [authorization] table: every id token may charge")
    return ctx.tokens


@router.get("/authorization/tokens")
async def list_tokens(ctx: ApiContext) -> list[TokenView]:
    """Every id token of the site (the site file's and the tokens file's) and its status now."""
    book = _book(ctx)
    now = datetime.now(UTC)
    return [
        TokenView.of(listed, book.verdict(listed.token.id, now).status or "Accepted")
        for listed in book.listed()
    ]


@writes.put("/authorization/tokens/{token_id}")
async def put_token(ctx: ApiContext, token_id: TokenId, body: TokenWrite) -> TokenView:
    """Keep an id token in the tokens file (added, or changed when it is there)."""
    book = _book(ctx)
    token = AuthToken(id=token_id, group=body.group, expires=body.expires, blocked=body.blocked)
    try:
        await trio.to_thread.run_sync(book.put, token)
    except ValueError as error:
        raise ApiError(409, str(error)) from None
    listed = next(t for t in book.listed() if t.token.id.casefold() == token_id.casefold())
    return TokenView.of(listed, book.verdict(token_id, datetime.now(UTC)).status or "Accepted")


@writes.delete("/authorization/tokens/{token_id}")
async def delete_token(ctx: ApiContext, token_id: TokenId) -> Accepted:
    """Remove an id token from the tokens file."""
    book = _book(ctx)
    try:
        removed = await trio.to_thread.run_sync(book.remove, token_id)
    except ValueError as error:
        raise ApiError(409, str(error)) from None
    if not removed:
        raise ApiError(404, f"no token {token_id!r} in the tokens file")
    return Accepted(detail=f"{token_id} removed")
