"""A server-side WebSocket over a Trio stream (RFC 6455; RFC 7692 permessage-deflate).

The opening handshake is wsproto's (`H11Handshake`); after it, frames are checked,
unmasked and encoded by the Rust core (`hubgate._core.WebSocketDecoder`). One task
reads: the connection's own (`WebSocket.run`), or, once its messages have a receiver and
it is plain TCP, the listener's `ReadHub`, which reads every such connection from one
`epoll` set. The reader hands each message to its receiver in that task and then writes
the frames queued meanwhile (the answers) itself, so an answered call costs no task
switch and no channel. Frames queued from other tasks (our calls, pings, a close) wake a
writer task. A frame is compressed when it is queued, and frames are written in
the order they were queued: the peer's decompressor sees exactly what went through the
compressor, whoever is cancelled when (issue 19, item 11).
"""

from __future__ import annotations

import os
import select
import zlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import trio
from trio_websocket import CloseReason, ConnectionClosed
from wsproto import ConnectionType
from wsproto.events import AcceptConnection, RejectConnection, Request
from wsproto.extensions import PerMessageDeflate
from wsproto.handshake import H11Handshake
from wsproto.utilities import RemoteProtocolError

from hubgate._core import WebSocketDecoder, encode_websocket_close, encode_websocket_frame
from hubgate.listeners import GuardedStream

if TYPE_CHECKING:
    from hubgate.ocpp.session import HotCall, HotCalls, Receive

TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA
"""Frame opcodes (RFC 6455 5.2), also the decoder's event kinds."""
HOT = 0x80
"""Decoder event: a text message the session's `OcppCallReader` read (`HotCalls`)."""
COMPRESSED = 0x40
"""Added to a message's kind when it is still deflated."""
FAILED = 0xFF
"""Decoder event: the peer broke the protocol (`code` is the close code to send)."""
NO_STATUS, ABNORMAL, INVALID_DATA, TOO_BIG = 1005, 1006, 1007, 1009
READ_BYTES = 65536
FINAL_WRITE_S = 2.0
"""How long the last frames (a close) may take to go out once reading has ended."""
_DEFLATE_TAIL = b"\x00\x00\xff\xff"
DEFLATE_WINDOW_BITS = 12
DEFLATE_MEM_LEVEL = 5
"""What our compressor uses at most (websockets' own server default): a 4 KiB window and a
small hash table take about 21 KiB per connection where zlib's defaults (32 KiB, level 8)
take about 112 KiB, for messages of a few hundred bytes. A smaller window than agreed needs
no negotiation: the peer's decompressor reads any window up to the agreed one. A client that
offers `client_max_window_bits` without a value (websockets' default) is asked for the same
window (RFC 7692 7.1.2.2), so our decompressor keeps 11 KiB instead of 40."""
COMPRESS_FROM_BYTES = 1024
"""Smaller messages go uncompressed even where permessage-deflate was agreed (RSV1 clear,
RFC 7692 6): OCPP answers are a few hundred bytes, where compressing saves a few dozen bytes
and costs a compress and a flush each; a connection that never sends a larger message never
makes a compressor (about 30 KiB: 1.5 MiB of the depot-200 gateway's 50 stations)."""


class Upgrade:
    """A client's upgrade request, read but not answered yet."""

    def __init__(self, stream: trio.abc.Stream, handshake: H11Handshake, request: Request):
        self._stream = stream
        self._handshake = handshake
        self.request = request

    @property
    def path(self) -> str:
        """The request target (path and query)."""
        return self.request.target

    @property
    def headers(self) -> dict[bytes, bytes]:
        """The request's headers, names in lower case."""
        return {name.lower(): value for name, value in self.request.extra_headers}

    @property
    def subprotocols(self) -> list[str]:
        """The subprotocols the client offers."""
        return list(self.request.subprotocols)

    async def reject(self, status: int, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
        """Answer with an HTTP error instead of the upgrade."""
        answer = RejectConnection(status_code=status, headers=list(headers))
        await self._stream.send_all(self._handshake.send(answer))

    async def accept(
        self,
        subprotocol: str | None,
        *,
        max_message_bytes: int,
        max_queued_frames: int,
        hub: ReadHub | None = None,
    ) -> WebSocket:
        """Switch protocols (with permessage-deflate when the client offers it)."""
        deflate = PerMessageDeflate(client_max_window_bits=DEFLATE_WINDOW_BITS)
        answer = AcceptConnection(subprotocol=subprotocol, extensions=[deflate])
        await self._stream.send_all(self._handshake.send(answer))
        return WebSocket(
            self._stream,
            subprotocol,
            deflate=deflate if deflate.enabled() else None,
            max_message_bytes=max_message_bytes,
            max_queued_frames=max_queued_frames,
            hub=hub,
        )


async def read_upgrade(stream: trio.abc.Stream) -> Upgrade | None:
    """Read a client's HTTP upgrade request; None if it leaves first or sends no valid
    one (then it is answered 400)."""
    handshake = H11Handshake(ConnectionType.SERVER)
    while True:
        data = await stream.receive_some(READ_BYTES)
        if not data:
            return None
        try:
            handshake.receive_data(bytes(data))
        except RemoteProtocolError as exc:
            hint = exc.event_hint
            if isinstance(hint, RejectConnection):
                await stream.send_all(handshake.send(RejectConnection(status_code=400)))
            return None
        for event in handshake.events():
            if isinstance(event, Request):
                return Upgrade(stream, handshake, event)


class _Deflate:
    """Permessage-deflate as negotiated: one compressor and one decompressor, reset per
    message where the peer asked for no context takeover."""

    def __init__(self, agreed: PerMessageDeflate, max_message_bytes: int) -> None:
        self._agreed = agreed
        self._max = max_message_bytes
        # zlib refuses a raw deflate window of 8 bits; 9 reads what 8 wrote.
        self._in_bits = -max(agreed.client_max_window_bits, 9)
        self._out_bits = -max(min(agreed.server_max_window_bits, DEFLATE_WINDOW_BITS), 9)
        self._inflate = zlib.decompressobj(self._in_bits)
        self._deflate: zlib._Compress | None = None
        """Made on first need."""

    def inflate(self, data: bytes) -> bytes | int:
        """A received message, or the close code when it is not valid or too big."""
        try:
            plain = self._inflate.decompress(data + _DEFLATE_TAIL, self._max + 1)
        except zlib.error:
            return INVALID_DATA
        if len(plain) > self._max:
            return TOO_BIG
        if self._agreed.client_no_context_takeover:
            self._inflate = zlib.decompressobj(self._in_bits)
        return plain

    def deflate(self, data: bytes) -> bytes:
        """A message to send, compressed (its frame gets RSV1)."""
        compressor = self._deflate or self._compressor()
        out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
        self._deflate = None if self._agreed.server_no_context_takeover else compressor
        return out[: -len(_DEFLATE_TAIL)]

    def _compressor(self) -> zlib._Compress:
        return zlib.compressobj(
            zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, self._out_bits, DEFLATE_MEM_LEVEL
        )


class WebSocket:
    """An open server-side WebSocket; `run` must run while it is used.

    Messages go to the receiver given to `deliver_to`, else wait (at most four) for
    `get_message`. Outgoing frames wait in order for the peer to read; more than
    `max_queued_frames` messages waiting makes `queue_message` raise `trio.WouldBlock`.
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        subprotocol: str | None,
        *,
        deflate: PerMessageDeflate | None,
        max_message_bytes: int,
        max_queued_frames: int,
        hub: ReadHub | None = None,
    ) -> None:
        """`hub`: reads the connection while its messages go to a receiver (a plain TCP
        connection only); else this connection's task reads it."""
        self.subprotocol = subprotocol
        self._stream = stream
        self._socket = (
            stream.socket if isinstance(stream, GuardedStream | trio.SocketStream) else None
        )
        """A plain TCP connection's socket: the reader writes to it without waiting."""
        self._decoder = WebSocketDecoder(max_message_bytes, deflate=deflate is not None)
        self._deflate = None if deflate is None else _Deflate(deflate, max_message_bytes)
        self._max_queued = max_queued_frames
        self._out: list[bytes] = []
        self._fences: list[Callable[[], bool]] = []
        """The fencing guards (`hubgate.fencing`) of the commands among `_out`."""
        self._fenced = False
        """A queued command's epoch passed before it was written: nothing more is."""
        self._queued_messages = 0
        self._writing = False
        self._reading = False
        """True while the reader hands over messages: it writes what they queue."""
        self._read_done = False
        self._wake = trio.Event()
        self._receive: Receive | None = None
        self._receive_hot: Callable[[HotCall], None] | None = None
        """Where hot calls read from the bytes go (kept after `deliver_to(None)`: the
        decoder then reads none)."""
        self._inbox, self._waiting = trio.open_memory_channel[str | bytes](4)
        self._held: list[str | bytes] = []
        """Messages read while no receiver was set, on their way to `_inbox`."""
        self._hub = hub
        self._pongs: dict[bytes, trio.Event] = {}
        self._close_sent = False
        self._ended = trio.Event()
        self.close_reason: CloseReason | None = None
        """Why the connection ended (None while open)."""

    # --- reading ---------------------------------------------------------------------

    async def run(self) -> None:
        """Read until the connection ends (closing handshake, protocol error, or the
        peer gone); write what is queued meanwhile, the last close frame included."""
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._write_woken, nursery.cancel_scope)
                await self._read()
                self._read_done = True
                self._wake.set()
                nursery.cancel_scope.deadline = trio.current_time() + FINAL_WRITE_S
        finally:
            self._end(ABNORMAL, "connection lost")
            self._inbox.close()
            for waiter in self._pongs.values():
                waiter.set()
            self._ended.set()

    async def _read(self) -> None:
        while self.close_reason is None:
            if self._held:  # no receiver: they wait for `get_message`, four at most
                await self._inbox.send(self._held.pop(0))
                continue
            if self._hub is not None and self._receive is not None and self._socket is not None:
                try:
                    if await self._hub.serve(self, self._socket.fileno()):
                        continue
                except trio.ClosedResourceError:  # the listener is stopping
                    pass
                return
            try:
                data = await self._stream.receive_some(READ_BYTES)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return
            if not data:
                return
            self._take(data)

    def _take(self, data: bytes | bytearray) -> None:
        """Hand over the messages `data` completes, then write what they queued."""
        self._handle(self._decoder.receive(data))

    def _take_from(self, fd: int) -> bool:
        """`_take` of what the socket `fd` holds (read in the decoder's call); False once
        the peer closed the connection or it broke."""
        events = self._decoder.receive_from(fd)
        if events is None:
            return False
        self._handle(events)
        return True

    def _handle(self, events: list[tuple[int, Any, int]]) -> None:
        self._reading = True
        try:
            for kind, payload, code in events:
                if kind == HOT:
                    self._deliver_hot(payload)
                elif kind in (TEXT, BINARY):
                    self._deliver(payload)
                elif kind in (TEXT | COMPRESSED, BINARY | COMPRESSED):
                    self._inflated(kind == TEXT | COMPRESSED, payload)
                else:
                    self._control(kind, payload, code)
                if self.close_reason is not None:
                    break
        finally:
            self._reading = False
        if self._out:
            self._write_now()

    def _deliver(self, message: str | bytes) -> None:
        if self._close_sent:
            return  # after our close, data is dropped (RFC 6455 5.5.1)
        receive = self._receive
        if receive is not None and not self._held:
            receive(message)
        else:
            self._held.append(message)

    def _deliver_hot(self, call: HotCall) -> None:
        if not self._close_sent and self._receive_hot is not None:
            self._receive_hot(call)

    def _inflated(self, text: bool, payload: str | bytes) -> None:
        assert self._deflate is not None
        assert isinstance(payload, bytes)
        plain = self._deflate.inflate(payload)
        if isinstance(plain, int):
            self._fail(plain, "compressed message invalid or over the size limit")
        elif not text:
            self._deliver(plain)
        else:
            kind, message, code = self._decoder.inflated_text(plain)
            if kind == HOT:
                self._deliver_hot(message)
            elif kind == TEXT:
                self._deliver(message)
            else:
                self._fail(code, message)

    def _control(self, kind: int, payload: str | bytes, code: int) -> None:
        if kind == PING:
            assert isinstance(payload, bytes)
            self._out.append(encode_websocket_frame(PONG, payload))
        elif kind == PONG:
            assert isinstance(payload, bytes)
            waiter = self._pongs.pop(payload, None)
            if waiter is not None:
                waiter.set()
        elif kind == CLOSE:
            if not self._close_sent:
                self._close_sent = True
                self._out.append(encode_websocket_close(1000 if code == NO_STATUS else code, ""))
            self._end(code, str(payload))
        else:  # FAILED
            self._fail(code, str(payload))

    def _fail(self, code: int, reason: str) -> None:
        """The peer broke the protocol: a close frame with `code`, then the end."""
        if not self._close_sent:
            self._close_sent = True
            self._out.append(encode_websocket_close(code, reason))
        self._end(code, reason)

    def _end(self, code: int, reason: str) -> None:
        """Record why the connection ends (the first reason stays)."""
        if self.close_reason is None:
            self.close_reason = CloseReason(code, reason or None)

    def deliver_to(self, receive: Receive | None, hot: HotCalls | None = None) -> None:
        """`session.PushesMessages`: the messages waiting first, then each as it is read
        (a hot call read in the decoder's call, given `hot`)."""
        if receive is not None and hot is not None:
            self._receive_hot = hot.receive
            self._decoder.read_calls(hot.reader, hot.max_bytes)
        else:
            self._decoder.read_calls(None, 0)
        if receive is not None:
            while True:
                try:
                    receive(self._waiting.receive_nowait())
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
            while self._held:
                receive(self._held.pop(0))
        self._receive = receive

    async def get_message(self) -> str | bytes:
        """The next message not handed to a receiver; `ConnectionClosed` at the end."""
        try:
            return await self._waiting.receive()
        except trio.EndOfChannel:
            raise ConnectionClosed(self.close_reason) from None

    # --- writing ---------------------------------------------------------------------

    def queue_message(self, message: str | bytes, guard: Callable[[], bool] | None = None) -> None:
        """Queue a message to send (compressed now, if agreed and `COMPRESS_FROM_BYTES` long); never waits. `guard`: the
        fencing guard of the command it carries (`hubgate.fencing.SEND_GUARD`): checked
        again right before the message's bytes go to the socket; when it fails, the
        connection ends without them (a compressed message cannot be taken out of the
        stream), and the charger dials whichever gateway leads now.

        Raises `ConnectionClosed` once closing, `trio.WouldBlock` when
        `max_queued_frames` messages are waiting for the peer to read."""
        if self._close_sent or self.close_reason is not None:
            raise ConnectionClosed(self.close_reason)
        if self._queued_messages >= self._max_queued:
            raise trio.WouldBlock
        data = message.encode() if isinstance(message, str) else message
        opcode = TEXT if isinstance(message, str) else BINARY
        if self._deflate is not None and len(data) >= COMPRESS_FROM_BYTES:
            frame = encode_websocket_frame(opcode, self._deflate.deflate(data), rsv1=True)
        else:
            frame = encode_websocket_frame(opcode, data)
        self._queued_messages += 1
        if guard is not None:
            self._fences.append(guard)
        self._queue(frame)

    async def send_message(self, message: str | bytes) -> None:
        """`session.Transport`: queue a message (written by this connection's tasks)."""
        self.queue_message(message)
        await trio.lowlevel.checkpoint()

    def _queue(self, frame: bytes) -> None:
        self._out.append(frame)
        if not self._reading:  # else the reader writes it at the end of its turn
            self._wake.set()

    def _write_now(self) -> None:
        """The reader's end of turn: what the socket takes at once is written here,
        without a task switch; the rest (and everything, under TLS or while the writer
        is busy) goes to the writer task, so the reader never waits for the peer."""
        sock = self._socket
        if sock is None or self._writing or not self._still_held():
            self._wake.set()
            return
        data = b"".join(self._out)
        self._out.clear()
        try:
            written = os.write(sock.fileno(), data)
        except BlockingIOError:
            written = 0
        except OSError:
            self._end(ABNORMAL, "connection lost")
            return
        if written < len(data):
            self._out.append(data[written:])
            self._wake.set()
        else:
            self._queued_messages = 0

    async def _write_woken(self, scope: trio.CancelScope) -> None:
        """The writer: what other tasks queue, and what the socket did not take at once.
        Ends once the reader is done and all is written, or when the peer is gone."""
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            if not await self._flush():
                self._end(ABNORMAL, "connection lost")
                scope.cancel()
                return
            if self._read_done:
                return

    async def _flush(self) -> bool:
        """Write what is queued, in order; False once the connection is broken. Only one
        task writes at a time: a second caller leaves its frames to the first."""
        if self._fenced:
            return False
        if self._writing:
            return True
        self._writing = True
        try:
            while self._out:
                if not self._still_held():
                    return False
                data = b"".join(self._out)
                self._out.clear()
                self._queued_messages = 0
                await self._stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._out.clear()
            return False
        finally:
            self._writing = False
        return True

    def _still_held(self) -> bool:
        """Whether every command queued may still go out: the last check of their fencing
        epochs before their bytes go to the socket (nothing awaited after it). Once one may
        not, nothing queued is written and the connection ends."""
        fences = self._fences
        if fences and not self._fenced:
            self._fenced = not all(guard() for guard in fences)
            fences.clear()  # checked for the bytes written next
            if self._fenced:
                self._out.clear()
                self._end(ABNORMAL, "a command of a lease no longer held: not sent")
        return not self._fenced

    async def ping(self) -> None:
        """Send a ping and wait for its pong; `ConnectionClosed` if the connection ends."""
        if self.close_reason is not None:
            raise ConnectionClosed(self.close_reason)
        payload = os.urandom(4)
        waiter = self._pongs[payload] = trio.Event()
        self._queue(encode_websocket_frame(PING, payload))
        try:
            await waiter.wait()
        finally:
            self._pongs.pop(payload, None)
        if self.close_reason is not None:
            raise ConnectionClosed(self.close_reason)

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake and wait for it to end (bound it with a timeout)."""
        if not self._close_sent and self.close_reason is None:
            self._close_sent = True
            self._queue(encode_websocket_close(code, reason))
        await self._ended.wait()


class _Served:
    """A connection the hub reads, and how its reading ended."""

    __slots__ = ("done", "ended", "error", "ws")

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.done = trio.Event()
        self.ended = False
        """The peer closed the connection or it broke."""
        self.error: Exception | None = None


class ReadHub:
    """Reads the sockets of many connections from one task (`run`): their descriptors
    stay in one `epoll` set of its own (level-triggered, registered once), and each pass
    reads every connection that has data and hands its messages over, in this task. Per
    message that saves the Trio wait for readability (an `epoll_ctl`), the wake-up and the
    switch to the connection's task, and Trio's `epoll` sized for every connection; those
    were two thirds of the listener's CPU at 10,000 stations (docs/performance.md)."""

    MAX_EVENTS = 256
    """Connections read per pass; the rest wait for the next (other tasks run between)."""

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._served: dict[int, _Served] = {}

    async def run(self) -> None:
        """Read until cancelled; then close the `epoll` set."""
        try:
            while True:
                await trio.lowlevel.wait_readable(self._epoll)
                for fd, _ in self._epoll.poll(0, self.MAX_EVENTS):
                    self._readable(fd)
        finally:
            self._epoll.close()

    async def serve(self, ws: WebSocket, fd: int) -> bool:
        """Read `ws` (socket `fd`) here until its messages have no receiver, it closes or
        this is cancelled; False when the connection has ended."""
        if self._epoll.closed:
            raise trio.ClosedResourceError("the listener's reader has stopped")
        served = self._served[fd] = _Served(ws)
        self._epoll.register(fd, select.EPOLLIN)
        try:
            await served.done.wait()
        finally:
            self._forget(fd)
        if served.error is not None:
            raise served.error
        return not served.ended

    def _readable(self, fd: int) -> None:
        served = self._served.get(fd)
        if served is None:
            return
        ws = served.ws
        try:
            served.ended = not ws._take_from(fd)
        except Exception as exc:  # the connection's task raises it: the others go on
            served.error = exc
        if served.ended or served.error or ws.close_reason is not None or ws._held:
            self._forget(fd)
            served.done.set()

    def _forget(self, fd: int) -> None:
        if self._served.pop(fd, None) is not None and not self._epoll.closed:
            self._epoll.unregister(fd)
