"""What the API checks before the app sees a request (pure ASGI, outermost):

- the Host header: an IP address, `localhost`, this machine's name or one of `[api]
  trusted_hosts`; anything else is 400, so a web page on another domain that DNS rebinding
  pointed at the gateway cannot read it;
- a request that carries a body needs the token before a byte of the body is read (401,
  or 403 while writes are disabled; 429 after too many wrong tokens from its address), and
  the connection is closed after the answer;
- a body larger than `[api] max_body_bytes` is 413: a declared length at once, a chunked
  body as soon as it passes the limit.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Iterable
from typing import Any

from hubgate.api.context import ApiContext
from hubgate.api.deps import authenticate, bearer_token
from hubgate.api.http11 import Message
from hubgate.api.routing import ApiError, Receive, Send
from hubgate.config.services import Api

LOCAL_NAMES = ("localhost",)


class TrustedHosts:
    """Which Host headers the API answers."""

    def __init__(self, api: Api, machine: str | None = None) -> None:
        names = {*LOCAL_NAMES, (machine or socket.gethostname()).lower(), api.host.lower()}
        names |= {name.lower() for name in api.trusted_hosts}
        self.names = frozenset(name for name in names if not name.startswith("*."))
        self.suffixes = tuple(name[1:] for name in names if name.startswith("*."))

    def allows(self, header: str) -> bool:
        """Whether a request with this Host header (port included or not) is answered."""
        host = _host_name(header)
        if not host:
            return False
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return host in self.names or host.endswith(self.suffixes)
        return True


def _host_name(header: str) -> str:
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else ""
    if header.count(":") == 1:
        return header.split(":", 1)[0]
    return header


class RequestGuard:
    """The checks above, around `app`."""

    def __init__(self, app: Any, ctx: ApiContext) -> None:
        self.app = app
        self.ctx = ctx
        self.api = ctx.site.api
        self.hosts = TrustedHosts(self.api)

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        if not self.hosts.allows(host):
            detail = f"untrusted Host header {host[:100]!r}: add the name to [api] trusted_hosts"
            await _refuse(send, 400, detail)
            return
        length = headers.get("content-length")
        if length in (None, "0") and "transfer-encoding" not in headers:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        source = str(client[0]) if client else "?"
        try:
            authenticate(self.ctx, bearer_token(headers.get("authorization")), source)
        except ApiError as refused:
            await _refuse(send, refused.status, str(refused.detail), refused.headers.items())
            return
        limit = self.api.max_body_bytes
        if length is not None and (not length.isdigit() or int(length) > limit):
            await _refuse(send, 413, f"the body is larger than {limit} bytes")
            return
        body = await _read_body(receive, limit)
        if body is None:
            await _refuse(send, 413, f"the body is larger than {limit} bytes")
            return
        await self.app(scope, _replay(body, receive), send)


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it passes `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()  # the disconnect, when it comes
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


async def _refuse(
    send: Send, status: int, detail: str, headers: Iterable[tuple[str, str]] = ()
) -> None:
    """Answer `status` with `{"detail": ...}` and close the connection after it."""
    body = json.dumps({"detail": detail}).encode()
    raw = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *((name.lower().encode(), value.encode()) for name, value in headers),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
