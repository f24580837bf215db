"""One OCPP-J session per WebSocket connection, on Trio.

The reader never blocks: a handler that answers at once (`Immediate`: hubgate's
own CSMS answers) runs inline where the frame was read, any other incoming call in
its own task, so a slow handler cannot stall pings or other calls. A charger's usual
calls (MeterValues, StatusNotification, Heartbeat) are read from the frame's text in
one Rust call (`hubgate._core.OcppCallReader`: parsed, checked, their fields taken
out) when the handler has a `hot` half; anything it does not read takes the Python
path, which names the CallError. A transport
that can push its messages (`PushesMessages`: the listener's connection) hands
them over in its reader task, without a channel and a task switch per frame.
Outgoing calls are serialised (OCPP-J allows one outstanding call per direction)
and time out. Any bad frame is answered with the CallError its version prescribes
and the session goes on.

Every outgoing frame is queued and written by one writer task, the only one
that touches the connection's send side. A frame goes through the connection's
permessage-deflate compressor as it is written, and the compressor's window
must hold exactly what the peer received: a sender cancelled between the two
(a call at a control cycle's deadline) used to leave text in the window the
peer never saw, and every later frame referring back to it decompressed into
fragments of other messages. The queue is bounded: a peer that lets it fill
(it sends calls but does not read the answers) is disconnected.
"""

from __future__ import annotations

import functools
import itertools
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import trio
from trio_websocket import ConnectionClosed

from hubgate._core import OcppCallReader
from hubgate.fencing import SEND_GUARD, check_send
from hubgate.log_limits import RateLimitedLog, clip
from hubgate.ocpp import rpc
from hubgate.ocpp.errors import (
    ErrorCode,
    OcppCallError,
    OcppCallTimeoutError,
    OcppSessionClosedError,
    RpcError,
)
from hubgate.ocpp.link_stats import OcppLinkStats
from hubgate.ocpp.rpc import Payload
from hubgate.ocpp.validation import Direction, hot_reader, validate
from hubgate.ocpp.versions import OcppVersion

LOG = logging.getLogger("hubgate.ocpp")
_quiet = RateLimitedLog(LOG)

INCOMING_ID: ContextVar[str] = ContextVar("INCOMING_ID")
"""The message id of the call a handler is answering (a proxy forwards it unchanged)."""

Handler = Callable[[Payload], Awaitable[Payload]]
"""Answers one incoming call's payload with the result payload (or raises RpcError)."""


@dataclass(frozen=True, slots=True)
class Immediate:
    """A handler that answers without waiting for anything: a session runs it inline, in
    the task that read the call, instead of starting a task for it. Awaiting it (as a
    `Handler`) gives the same answer. `hot`: the same answer from the fields
    `hubgate._core.OcppCallReader` reads out of a frame of this call (a MeterValues,
    StatusNotification or Heartbeat), which the session then never parses in Python."""

    answer: Callable[[Payload], Payload]
    hot: Callable[[Any], Payload] | None = None

    async def __call__(self, payload: Payload) -> Payload:
        return self.answer(payload)


class Transport(Protocol):
    """What a session needs from its connection (a trio-websocket connection fits)."""

    async def get_message(self) -> str | bytes: ...

    async def send_message(self, message: str | bytes) -> None: ...


Receive = Callable[[str | bytes], None]
HotCall = tuple[str, str, Any]
"""A hot call as `OcppCallReader.read` reads it: (message id, action, its fields)."""


@dataclass(frozen=True)
class HotCalls:
    """How a transport that reads a frame's bytes itself also reads the hot calls in them
    (one Rust call from the bytes to the fields): with `reader`, a text message of at most
    `max_bytes`; what it reads goes to `receive`, anything else as text to the session."""

    reader: OcppCallReader
    max_bytes: int
    receive: Callable[[HotCall], None]


@runtime_checkable
class PushesMessages(Protocol):
    """A transport that can call the session with each message as its reader gets it.

    `deliver_to(receive, hot)` first gives `receive` the messages already waiting, in
    order, then every later one (`get_message` then only waits for the end of the
    connection), a hot call read from its bytes to `hot.receive`; `deliver_to(None)` goes
    back to queueing them. `receive` never raises and never waits.
    """

    def deliver_to(self, receive: Receive | None, hot: HotCalls | None = None) -> None: ...


@runtime_checkable
class QueuesMessages(Protocol):
    """A transport that keeps its own queue of outgoing messages and writes them in
    order from its own task (`hubgate.ocpp.websocket.WebSocket`): the session needs no
    writer task. `queue_message` never waits; it raises `trio.WouldBlock` when too many
    messages wait for the peer to read, `ConnectionClosed` once the connection closes."""

    def queue_message(self, message: str, guard: Callable[[], bool] | None = None) -> None: ...


def _unsupported(action: str) -> RpcError:
    return RpcError(ErrorCode.NOT_SUPPORTED, f"{action} is not supported here")


@dataclass
class _Pending:
    unique_id: str
    action: str
    done: trio.Event = field(default_factory=trio.Event)
    reply: rpc.CallResult | rpc.CallError | None = None


@dataclass(frozen=True)
class SessionLimits:
    """Per-connection limits."""

    call_timeout_s: float = 30.0
    max_payload_bytes: int = 64 * 1024
    max_concurrent_calls: int = 8
    max_queued_frames: int = 64
    """Outgoing frames waiting for the peer to read; more, and the peer is disconnected."""


class OcppSession:
    """The OCPP-J endpoint of one charger connection (we are the CSMS side)."""

    def __init__(
        self,
        transport: Transport,
        version: OcppVersion,
        handlers: Mapping[str, Handler],
        *,
        identity: str = "",
        limits: SessionLimits | None = None,
        link: OcppLinkStats | None = None,
    ) -> None:
        """`link`: where its frames and our calls are counted (the station's, across its
        connections; default: its own)."""
        self.transport = transport
        self._queue = transport.queue_message if isinstance(transport, QueuesMessages) else None
        """The transport's own queue, when it has one (then no writer task)."""
        self.version = version
        self.identity = identity
        self.limits = limits or SessionLimits()
        self._handlers = handlers
        self._hot = {
            action: handler.hot
            for action, handler in handlers.items()
            if isinstance(handler, Immediate) and handler.hot is not None
        }
        self._reader = hot_reader(version, frozenset(self._hot)) if self._hot else None
        """Reads the calls of `_hot` from a frame's text in one Rust call."""
        self._text_reader = self._reader
        """`_reader`, unless the transport reads the hot calls from the bytes itself."""
        self._call_lock = trio.Lock()
        self._call_ids = map(f"{uuid.uuid4().hex[:12]}-{{}}".format, itertools.count(1))
        """Our calls' message ids: unique on this connection (OCPP-J asks no more), and a
        random prefix per connection; a counter costs a tenth of a fresh UUID's 4-6 µs."""
        self._pending: _Pending | None = None
        self._active_calls = 0
        self._closed = False
        self._done = trio.Event()
        self._outbox, self._outgoing = trio.open_memory_channel[str](self.limits.max_queued_frames)
        self._run_scope = trio.CancelScope()
        self._log = _quiet.scoped(identity)
        """This charger's log lines: clipped, at most one of a kind per 10 s."""
        self.dropped: str | None = None
        """Why hubgate ended the session (the peer did not read), else None."""
        self.last_seen = trio.current_time()
        """When the last frame arrived (trio clock); the listener pings only quiet peers."""
        self.link = link or OcppLinkStats()

    @property
    def closed(self) -> bool:
        """True once the connection has ended."""
        return self._closed

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Read and dispatch until the connection closes."""
        try:
            with self._run_scope:
                async with trio.open_nursery() as nursery:
                    if self._queue is None:
                        nursery.start_soon(self._write)
                    task_status.started()
                    pushes = isinstance(self.transport, PushesMessages)
                    receive = functools.partial(self._arrived, nursery=nursery)
                    try:
                        if pushes:
                            hot = self.hot_calls()
                            self.transport.deliver_to(receive, hot)  # type: ignore[attr-defined]
                            if hot is not None:  # it reads them: text is not a hot call
                                self._text_reader = None
                        while True:
                            try:
                                raw = await self.transport.get_message()
                            except ConnectionClosed:
                                break
                            receive(raw)
                    finally:
                        if pushes:  # before the nursery closes: nothing arrives after
                            self.transport.deliver_to(None)  # type: ignore[attr-defined]
                    nursery.cancel_scope.cancel()
        finally:
            self._close_pending()

    def _arrived(self, raw: str | bytes, nursery: trio.Nursery) -> None:
        self.last_seen = trio.current_time()
        self.link.received(self.last_seen)
        self._receive(raw, nursery)

    def hot_calls(self) -> HotCalls | None:
        """What a transport needs to read this session's hot calls from the frames' bytes
        (None: it has none)."""
        if self._reader is None:
            return None
        return HotCalls(self._reader, self.limits.max_payload_bytes, self._arrived_hot)

    def _arrived_hot(self, call: HotCall) -> None:
        """`_arrived` of a hot call the transport read from the frame's bytes."""
        self.last_seen = trio.current_time()
        self.link.received(self.last_seen)
        self._send_quietly(self._answer_hot(*call))

    async def _write(self) -> None:
        """Write the queued frames in order; nothing else sends on the connection."""
        with self._outgoing:
            async for text in self._outgoing:
                try:
                    await self.transport.send_message(text)
                except ConnectionClosed:
                    self._close_pending()
                    return

    async def wait_closed(self) -> None:
        """Return once the connection has ended."""
        await self._done.wait()

    async def call(
        self,
        action: str,
        payload: Payload,
        *,
        timeout_s: float | None = None,
        unique_id: str | None = None,
        checked: bool = False,
    ) -> Payload:
        """Send a call and return the peer's result payload (`unique_id`: a new one if None;
        `checked`: the payload is valid for this version already, e.g. a charger's call of
        the same version forwarded unchanged, and is not validated again).

        Raises `OcppCallError` (CallError or invalid result), `OcppCallTimeoutError` and
        `OcppSessionClosedError`; an invalid outgoing payload raises `RpcError` before sending.
        """
        if not checked:
            validate(self.version, action, Direction.REQUEST, payload)
        async with self._call_lock:
            if self._closed:
                raise OcppSessionClosedError(f"{self.identity}: connection closed")
            pending = _Pending(unique_id or next(self._call_ids), action)
            check_send()
            self._pending = pending
            calls = self.link.calls
            sent_at = trio.current_time()
            try:
                self._send(rpc.Call(pending.unique_id, action, payload), command=True)
                with trio.move_on_after(timeout_s or self.limits.call_timeout_s) as scope:
                    await pending.done.wait()
                if scope.cancelled_caught:
                    calls.record_timeout()
                    raise OcppCallTimeoutError(f"{self.identity}: {action} got no answer in time")
            finally:
                self._pending = None
        latency_s = trio.current_time() - sent_at
        try:
            result = await self._result(pending)
        except OcppCallError:
            calls.record_exception(latency_s)
            raise
        except OcppSessionClosedError:
            calls.record_error()
            raise
        calls.record_ok(latency_s)
        return result

    async def _result(self, pending: _Pending) -> Payload:
        reply = pending.reply
        if reply is None:
            raise OcppSessionClosedError(
                f"{self.identity}: closed while {pending.action} was pending"
            )
        if isinstance(reply, rpc.CallError):
            raise OcppCallError(pending.action, reply.code, reply.description)
        try:
            validate(self.version, pending.action, Direction.RESPONSE, reply.payload)
        except RpcError as exc:
            if self.version is OcppVersion.V21:
                self._send_quietly(
                    rpc.CallResultError(reply.unique_id, exc.code, exc.description[:255], {})
                )
            raise OcppCallError(pending.action, exc.code, exc.description) from None
        return reply.payload

    def _receive(self, raw: str | bytes, nursery: trio.Nursery) -> None:
        """Handle one frame without blocking: calls go to their own task."""
        reader = self._text_reader
        if reader is not None and type(raw) is str and len(raw) <= self.limits.max_payload_bytes:
            hot = reader.read(raw)  # a valid hot call, parsed and read, else None
            if hot is not None:
                self._send_quietly(self._answer_hot(*hot))
                return
        try:
            message = self._parse(raw)
        except RpcError as exc:
            self._log.info(
                "bad frame",
                "%s: bad frame (%s): %s",
                self.identity,
                exc.code,
                clip(exc.description),
            )
            if exc.answerable:
                self._send_quietly(rpc.error_reply(exc, self.version))
            return
        match message:
            case rpc.Call():
                handler = self._handlers.get(message.action)
                if handler is None or isinstance(handler, Immediate):
                    self._send_quietly(self._answer_now(message, handler))
                    return
                if self._active_calls >= self.limits.max_concurrent_calls:
                    busy = RpcError(
                        ErrorCode.GENERIC_ERROR,
                        "too many concurrent calls",
                        unique_id=message.unique_id,
                    )
                    self._send_quietly(rpc.error_reply(busy, self.version))
                    return
                self._active_calls += 1
                nursery.start_soon(self._serve_call, message)
            case rpc.Send():
                nursery.start_soon(self._serve_send, message)
            case rpc.CallResult() | rpc.CallError():
                pending = self._pending
                if pending is None or pending.unique_id != message.unique_id:
                    self._log.info(
                        "unknown id",
                        "%s: dropped reply to unknown id %s",
                        self.identity,
                        clip(message.unique_id),
                    )
                    return
                pending.reply = message
                pending.done.set()
            case rpc.CallResultError():
                self._log.warning(
                    "result rejected",
                    "%s: charger rejected our result %s: %s %s",
                    self.identity,
                    clip(message.unique_id),
                    clip(message.code),
                    clip(message.description),
                )

    def _parse(self, raw: str | bytes) -> rpc.Message:
        if isinstance(raw, bytes):
            text = raw.decode("utf-8", errors="replace")
            raise RpcError(
                rpc.error_code_for(self.version, ErrorCode.RPC_FRAMEWORK_ERROR),
                "OCPP-J frames are text, got a binary frame",
                unique_id=rpc.peek_unique_id(text)[1],
            )
        if len(raw) > self.limits.max_payload_bytes:
            message_type, unique_id = rpc.peek_unique_id(raw)
            raise RpcError(
                rpc.error_code_for(self.version, ErrorCode.FORMAT_VIOLATION),
                f"frame of {len(raw)} characters exceeds the limit of "
                f"{self.limits.max_payload_bytes}",
                unique_id=unique_id,
                answerable=message_type in (None, rpc.MessageTypeId.CALL),
            )
        return rpc.parse(raw, self.version)

    async def _serve_call(self, call: rpc.Call) -> None:
        try:
            reply: rpc.Message = rpc.CallResult(call.unique_id, await self._dispatch(call))
        except RpcError as exc:
            reply = self._rejected(call, exc)
        except Exception:
            reply = self._failed(call)
        finally:
            self._active_calls -= 1
        self._send_quietly(reply)

    def _answer_now(self, call: rpc.Call, handler: Immediate | None) -> rpc.Message:
        """The reply to a call whose handler answers at once, or that has none
        (`_serve_call` without a task)."""
        try:
            validate(self.version, call.action, Direction.REQUEST, call.payload)
            INCOMING_ID.set(call.unique_id)
            if handler is None:
                raise _unsupported(call.action)
            result = self._checked_result(call.action, handler.answer(call.payload))
        except RpcError as exc:
            return self._rejected(call, exc)
        except Exception:
            return self._failed(call)
        return rpc.CallResult(call.unique_id, result)

    def _answer_hot(self, unique_id: str, action: str, fields: object) -> rpc.Message:
        """`_answer_now` of a valid call `OcppCallReader` read: its handler's `hot` half."""
        try:
            INCOMING_ID.set(unique_id)
            result = self._checked_result(action, self._hot[action](fields))
        except RpcError as exc:
            return self._rejected(rpc.Call(unique_id, action, {}), exc)
        except Exception:
            return self._failed(rpc.Call(unique_id, action, {}))
        return rpc.CallResult(unique_id, result)

    def _rejected(self, call: rpc.Call, exc: RpcError) -> rpc.Message:
        self._log.info(
            "rejected",
            "%s: %s rejected (%s): %s",
            self.identity,
            clip(call.action),
            exc.code,
            clip(str(exc)),
        )
        exc.unique_id = call.unique_id
        return rpc.error_reply(exc, self.version)

    def _failed(self, call: rpc.Call) -> rpc.Message:
        self._log.exception("failed", "%s: handler of %s failed", self.identity, call.action)
        return rpc.CallError(call.unique_id, ErrorCode.INTERNAL_ERROR, "handler failed", {})

    async def _dispatch(self, call: rpc.Call | rpc.Send) -> Payload:
        validate(self.version, call.action, Direction.REQUEST, call.payload)
        INCOMING_ID.set(call.unique_id)
        handler = self._handlers.get(call.action)
        if handler is None:
            raise _unsupported(call.action)
        result = await handler(call.payload)
        if isinstance(call, rpc.Send):
            return result  # a SEND has no response
        return self._checked_result(call.action, result)

    def _checked_result(self, action: str, result: Payload) -> Payload:
        """`result` if it is a valid answer to an `action` call; else it is logged and an
        InternalError raised (our bug, not the charger's)."""
        try:
            validate(self.version, action, Direction.RESPONSE, result)
        except RpcError as exc:
            self._log.log(
                logging.ERROR,
                "invalid result",
                "%s: our %s result is invalid: %s",
                self.identity,
                action,
                clip(str(exc)),
            )
            raise RpcError(ErrorCode.INTERNAL_ERROR, "invalid result") from None
        return result

    async def _serve_send(self, send: rpc.Send) -> None:
        try:
            await self._dispatch(send)
        except RpcError as exc:
            self._log.info(
                "send dropped",
                "%s: SEND %s dropped (%s)",
                self.identity,
                clip(send.action),
                clip(str(exc)),
            )
        except Exception:
            self._log.exception(
                "failed", "%s: handler of SEND %s failed", self.identity, send.action
            )

    def _send(self, message: rpc.Message, *, command: bool = False) -> None:
        """Queue a frame for the writer (a `command`: under this task's fencing guard,
        checked again by a transport that queues, right before the frame leaves); a full
        queue ends the session."""
        if self._closed:
            raise OcppSessionClosedError(f"{self.identity}: connection closed")
        try:
            if self._queue is not None:
                self._queue(rpc.encode(message), SEND_GUARD.get() if command else None)
            else:
                self._outbox.send_nowait(rpc.encode(message))
        except trio.WouldBlock:
            self._drop(
                f"disconnected: {self.limits.max_queued_frames} frames waiting, "
                "the charger does not read"
            )
            raise OcppSessionClosedError(f"{self.identity}: {self.dropped}") from None
        except (trio.BrokenResourceError, trio.ClosedResourceError, ConnectionClosed):
            self._close_pending()
            raise OcppSessionClosedError(f"{self.identity}: connection closed") from None

    def _send_quietly(self, message: rpc.Message) -> None:
        """Send a reply; a connection that is gone by now is not an error."""
        try:
            self._send(message)
        except OcppSessionClosedError:
            LOG.debug("%s: reply not sent: connection closed", self.identity)

    def _drop(self, reason: str) -> None:
        """End the session from our side (the connection is closed by its owner)."""
        LOG.warning("%s: %s", self.identity, reason)
        self.dropped = reason
        self._close_pending()
        self._run_scope.cancel()

    def _close_pending(self) -> None:
        self._closed = True
        self._done.set()
        if self._pending is not None:
            self._pending.done.set()
