"""FastAPI dependencies: the context of the running app, and Bearer-token checks."""

from __future__ import annotations

import hmac
from typing import Annotated, cast

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hubgate.api.context import ApiContext, connector_key

bearer = HTTPBearer(
    auto_error=False, description="The token of the site file's [api] table, as a Bearer token"
)


def context(request: Request) -> ApiContext:
    """The context the app was built with."""
    return cast(ApiContext, request.app.state.hubgate)


Ctx = Annotated[ApiContext, Depends(context)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]


def _check_token(ctx: ApiContext, credentials: HTTPAuthorizationCredentials | None) -> None:
    token = ctx.site.api.token
    if token is None:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "writes are disabled: set a token in the [api] table"
        )
    given = "" if credentials is None else credentials.credentials
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or wrong Bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )


async def require_token(ctx: Ctx, credentials: Credentials) -> None:
    """Let the request through only with the configured Bearer token."""
    _check_token(ctx, credentials)


def known_connector(ctx: ApiContext, charger: str, connector: int) -> str:
    """The key of a configured connector; 404 for any other."""
    key = connector_key(charger, connector)
    if key not in ctx.connector_keys:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no connector {key!r}")
    return key
