"""An ASGI app served over HTTP/1.1 on one Trio stream, with h11 (sans-IO).

One request at a time per connection: its body streamed to the app as it asks for it, the
response written as the app sends it (chunked when the app sets no length), the connection
kept for the next request unless either side asked to close it or a body was left unread.
An idle connection, or one whose request head does not arrive, is closed after
`keep_alive_s`; a head larger than `MAX_HEAD_BYTES` is refused (431), malformed HTTP is 400.

ASGI 3 with spec version 2.4: a client that went away is seen by `send` raising `OSError`
(what Starlette's streaming responses expect), so nothing reads the socket while the app
answers. Replaces Hypercorn, whose HTTP/2 and QUIC stacks the API does not speak: 2.4 MiB
less resident memory at the gateway's start (docs/performance.md, session 12). The app is
`hubgate.api.app.build_app`'s (`hubgate.api.routing`, no web framework).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

import h11
import trio

log = logging.getLogger("hubgate.api.server")

Message = MutableMapping[str, Any]
AsgiApp = Callable[
    [Message, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]

READ_BYTES = 64 * 1024
MAX_HEAD_BYTES = 16 * 1024
"""The largest request line and headers taken (h11's incomplete-event limit)."""
DRAIN_S = 1.0
"""How long a closing connection still reads what the client sent, so that its unread
request body does not make the kernel reset the connection before the answer arrives."""
CLOSED = (trio.BrokenResourceError, trio.ClosedResourceError)


class _Connection:
    def __init__(self, app: AsgiApp, stream: trio.abc.Stream, scope: dict[str, Any]) -> None:
        self.app = app
        self.stream = stream
        self.scope = scope
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)

    async def run(self, keep_alive_s: float) -> None:
        """Answer requests until either side closes or the connection idles out."""
        while True:
            event: Any = None
            with trio.move_on_after(keep_alive_s):
                try:
                    event = await self._next_event()
                except h11.RemoteProtocolError as error:
                    await self._refuse(error.error_status_hint)
                    return
            if not isinstance(event, h11.Request):
                return  # closed, timed out (event unset) or nothing more to read
            if not await self._answer(event):
                return
            self._skip_body_received()
            if self.h11.our_state is not h11.DONE or self.h11.their_state is not h11.DONE:
                return
            self.h11.start_next_cycle()

    def _skip_body_received(self) -> None:
        """Consume the end of a request whose body the app did not read (a GET's empty one)
        as far as it arrived already; a body still coming closes the connection instead."""
        while self.h11.their_state is h11.SEND_BODY:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError:
                return
            if event is h11.NEED_DATA or isinstance(event, h11.ConnectionClosed):
                return

    async def _next_event(self) -> Any:
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            try:
                data = await self.stream.receive_some(READ_BYTES)
            except CLOSED:
                data = b""
            self.h11.receive_data(bytes(data))

    async def _write(self, event: Any) -> None:
        data = self.h11.send(event)
        if data:
            await self.stream.send_all(data)

    async def _refuse(self, status: int) -> None:
        if self.h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            headers = [(b"content-length", b"0"), (b"connection", b"close")]
            try:
                await self._write(
                    h11.Response(status_code=status, headers=headers, reason=_reason(status))
                )
                await self._write(h11.EndOfMessage())
            except CLOSED:
                return

    async def _answer(self, request: h11.Request) -> bool:
        """Run the app for `request`; False when the connection cannot go on."""
        raw_path, _, query = request.target.partition(b"?")
        scope = {
            **self.scope,
            "http_version": request.http_version.decode(),
            "method": request.method.decode("ascii"),
            "path": unquote(raw_path.decode("ascii")),
            "raw_path": raw_path,
            "query_string": query,
            "headers": [(name, value) for name, value in request.headers],
        }
        head_only = request.method == b"HEAD"
        body_done = False
        started = False
        gone = False

        async def receive() -> Message:
            nonlocal body_done
            if body_done:
                await trio.sleep_forever()  # spec 2.4: a disconnect shows as `send` failing
            if self.h11.they_are_waiting_for_100_continue:
                await self._write(h11.InformationalResponse(status_code=100, headers=[]))
            try:
                event = await self._next_event()
            except h11.RemoteProtocolError:
                event = None
            if isinstance(event, h11.Data):
                return {"type": "http.request", "body": bytes(event.data), "more_body": True}
            body_done = True
            if isinstance(event, h11.EndOfMessage):
                return {"type": "http.request", "body": b"", "more_body": False}
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal started, gone
            try:
                if message["type"] == "http.response.start":
                    started = True
                    headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", ())]
                    status = message["status"]
                    await self._write(
                        h11.Response(status_code=status, headers=headers, reason=_reason(status))
                    )
                elif message["type"] == "http.response.body":
                    body = message.get("body", b"")
                    if body and not head_only:
                        await self._write(h11.Data(data=body))
                    if not message.get("more_body", False):
                        await self._write(h11.EndOfMessage())
            except CLOSED as error:
                gone = True
                raise OSError("the client closed the connection") from error

        try:
            await self.app(scope, receive, send)
        except Exception:
            if gone:
                return False
            log.exception("API request %s %s failed", scope["method"], scope["path"])
            if not started:
                await self._refuse(500)
            return False
        return not gone


def _reason(status: int) -> bytes:
    """The status line's reason phrase ("Not Found"), empty for a code without one."""
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


async def serve_asgi(
    app: AsgiApp, stream: trio.abc.Stream, scope: dict[str, Any], *, keep_alive_s: float
) -> None:
    """Serve `app` on `stream` until the connection ends; `scope` has what every request's
    ASGI scope shares (scheme, client, server). Never raises for what a client does."""
    connection = _Connection(
        app, stream, {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}, **scope}
    )
    try:
        await connection.run(keep_alive_s)
        await _drain(stream)
    except CLOSED:
        return


async def _drain(stream: trio.abc.Stream) -> None:
    """Half-close (plain TCP) and read what is left for `DRAIN_S` at most."""
    if isinstance(stream, trio.abc.HalfCloseableStream):
        await stream.send_eof()
    with trio.move_on_after(DRAIN_S):
        while await stream.receive_some(READ_BYTES):
            pass
