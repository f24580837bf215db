"""A charge point on `websockets`' sans-I/O client with permessage-deflate, as the simulator
dials, driven step by step over a Trio stream: every text frame it receives is kept as it
was decoded, and whether it answers calls is up to the test."""

from __future__ import annotations

import json
from typing import Any

import trio
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import enable_client_permessage_deflate
from websockets.frames import Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.typing import Subprotocol
from websockets.uri import parse_uri


class DeflatePeer:
    """One connection; `received` holds every text frame as decoded (or the decoding error)."""

    def __init__(self, stream: trio.SocketStream, protocol: ClientProtocol) -> None:
        self.stream = stream
        self.protocol = protocol
        self.received: list[str] = []
        self.garbled: list[str] = []
        """Frames that were not an OCPP-J array (text or the reason it could not be read)."""
        self.answering = trio.Event()
        """Calls are answered once this is set (before that they are only recorded)."""
        self.calls_seen = 0
        self._call_arrived = trio.Event()

    @classmethod
    async def open(
        cls, url: str, subprotocol: str, *, deflate: bool = True, receive_buffer: int = 0
    ) -> DeflatePeer:
        """Connect and complete the handshake, offering permessage-deflate unless `deflate` is
        False; `receive_buffer` > 0 sets SO_RCVBUF before connecting (a peer that stops
        reading then fills up quickly)."""
        uri = parse_uri(url)
        protocol = ClientProtocol(
            uri,
            extensions=enable_client_permessage_deflate(None) if deflate else None,
            subprotocols=[Subprotocol(subprotocol)],
        )
        sock = trio.socket.socket()
        if receive_buffer:
            sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_RCVBUF, receive_buffer)
        await sock.connect((uri.host, uri.port))
        stream = trio.SocketStream(sock)
        peer = cls(stream, protocol)
        protocol.send_request(protocol.connect())
        await peer._flush()
        while protocol.state is State.CONNECTING:
            await peer._read_some()
        handshake = protocol.events_received()
        assert protocol.handshake_exc is None, protocol.handshake_exc
        assert isinstance(handshake[0], Response)
        extensions = str(handshake[0].headers.get("Sec-WebSocket-Extensions"))
        assert ("permessage-deflate" in extensions) is deflate
        return peer

    async def flush(self) -> None:
        """Write what the protocol has to send."""
        await self._flush()

    async def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                await self.stream.send_all(data)

    async def _read_some(self) -> None:
        data = await self.stream.receive_some(65536)
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
        await self._flush()  # pongs, close echoes

    async def serve(self) -> None:
        """Read until the connection ends; answer calls once `answering` is set."""
        while self.protocol.state is State.OPEN:
            await self._read_some()
            for event in self.protocol.events_received():
                if event.opcode is Opcode.TEXT:
                    await self._on_text(bytes(event.data))
        if self.protocol.close_sent is not None and self.protocol.close_sent.code in (1002, 1007):
            self.garbled.append(f"closed by us: {self.protocol.close_sent}")

    async def _on_text(self, data: bytes) -> None:
        try:
            text = data.decode("utf-8")
            frame = json.loads(text)
            if not isinstance(frame, list) or frame[0] not in (2, 3, 4):
                raise ValueError("not an OCPP-J frame")
        except ValueError as exc:
            self.garbled.append(f"{exc}: {data[:120]!r}")
            return
        self.received.append(text)
        if frame[0] != 2:
            return
        self.calls_seen += 1
        self._call_arrived.set()
        await self.answering.wait()
        self.send([3, frame[1], _answer(frame[2])])
        await self._flush()

    def send(self, frame: list[Any]) -> None:
        """Queue one frame (sent with the next flush)."""
        self.protocol.send_text(json.dumps(frame).encode())

    async def wait_calls(self, count: int) -> None:
        """Return once `count` calls have arrived."""
        while self.calls_seen < count:
            self._call_arrived = trio.Event()
            await self._call_arrived.wait()


def _answer(action: str) -> dict[str, Any]:
    if action == "GetConfiguration":
        return {"configurationKey": [], "unknownKey": []}
    return {}
