"""Bearer-token checks and the lookups the routes share."""

from __future__ import annotations

import hmac
import math

from hubgate.api.context import ApiContext, connector_key
from hubgate.api.routing import ApiError
from hubgate.config.services import Api

BEARER_DOC = "The token of the site file's [api] table, as a Bearer token"
"""The OpenAPI security scheme's description."""


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header; "" for any other."""
    scheme, _, given = (authorization or "").partition(" ")
    return given.strip() if scheme.lower() == "bearer" else ""


def check_bearer(api: Api, given: str) -> None:
    """Raise `ApiError` (401, or 403 while writes are disabled) unless `given` is the
    `[api]` token."""
    token = api.token
    if token is None:
        raise ApiError(403, "writes are disabled: set a token in the [api] table")
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise ApiError(401, "missing or wrong Bearer token", {"WWW-Authenticate": "Bearer"})


def authenticate(ctx: ApiContext, given: str, source: str) -> None:
    """`check_bearer`, with failures counted per source address: after too many, 429 without
    a check until the window has passed (`ApiContext.auth_failures`)."""
    wait_s = ctx.auth_failures.retry_after(source)
    if wait_s > 0:
        raise ApiError(
            429,
            "too many wrong tokens from this address; try again later",
            {"Retry-After": str(math.ceil(wait_s))},
        )
    try:
        check_bearer(ctx.site.api, given)
    except ApiError as refused:
        if refused.status == 401:
            ctx.auth_failures.failed(source)
        raise


def known_connector(ctx: ApiContext, charger: str, connector: int) -> str:
    """The key of a configured connector; 404 for any other."""
    key = connector_key(charger, connector)
    if key not in ctx.connector_keys:
        raise ApiError(404, f"no connector {key!r}")
    return key
