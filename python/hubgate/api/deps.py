"""FastAPI dependencies: the context of the running app, and Bearer-token checks."""

from __future__ import annotations

import hmac
import math
from typing import Annotated, cast

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hubgate.api.context import ApiContext, connector_key
from hubgate.config.services import Api

bearer = HTTPBearer(
    auto_error=False, description="The token of the site file's [api] table, as a Bearer token"
)


def context(request: Request) -> ApiContext:
    """The context the app was built with."""
    return cast(ApiContext, request.app.state.hubgate)


Ctx = Annotated[ApiContext, Depends(context)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]


class TokenRefused(Exception):  # noqa: N818 - an HTTP answer, not a failure
    """The request lacks the token: answer `status` with `detail` and `headers`."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header; "" for any other."""
    scheme, _, given = (authorization or "").partition(" ")
    return given.strip() if scheme.lower() == "bearer" else ""


def check_bearer(api: Api, given: str) -> None:
    """Raise `TokenRefused` unless `given` is the `[api]` token."""
    token = api.token
    if token is None:
        raise TokenRefused(
            status.HTTP_403_FORBIDDEN, "writes are disabled: set a token in the [api] table"
        )
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise TokenRefused(
            status.HTTP_401_UNAUTHORIZED,
            "missing or wrong Bearer token",
            {"WWW-Authenticate": "Bearer"},
        )


def authenticate(ctx: ApiContext, given: str, source: str) -> None:
    """`check_bearer`, with failures counted per source address: after too many, 429 without
    a check until the window has passed (`ApiContext.auth_failures`)."""
    wait_s = ctx.auth_failures.retry_after(source)
    if wait_s > 0:
        raise TokenRefused(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "too many wrong tokens from this address; try again later",
            {"Retry-After": str(math.ceil(wait_s))},
        )
    try:
        check_bearer(ctx.site.api, given)
    except TokenRefused as refused:
        if refused.status == status.HTTP_401_UNAUTHORIZED:
            ctx.auth_failures.failed(source)
        raise


async def require_token(ctx: Ctx, credentials: Credentials, request: Request) -> None:
    """Let the request through only with the configured Bearer token."""
    source = request.client.host if request.client is not None else "?"
    try:
        authenticate(ctx, "" if credentials is None else credentials.credentials, source)
    except TokenRefused as refused:
        raise HTTPException(refused.status, refused.detail, headers=refused.headers) from None


def known_connector(ctx: ApiContext, charger: str, connector: int) -> str:
    """The key of a configured connector; 404 for any other."""
    key = connector_key(charger, connector)
    if key not in ctx.connector_keys:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no connector {key!r}")
    return key
