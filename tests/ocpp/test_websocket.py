"""The Rust core's WebSocket framing against two independent implementations, wsproto and
websockets: their client frames decoded whole, split at every byte and byte by byte; our
server frames read back by both; malformed frames closed with their RFC 6455 close codes
by the listener, over real sockets."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable

import pytest
import trio
import trio.testing
from websockets.frames import Close, Frame, Opcode
from websockets.streams import StreamReader
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Message, Ping, Pong, TextMessage
from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason

from hubgate._core import WebSocketDecoder, encode_websocket_close, encode_websocket_frame
from hubgate.ocpp.server import ListenerLimits
from hubgate.ocpp.websocket import (
    BINARY,
    CLOSE,
    COMPRESS_FROM_BYTES,
    FAILED,
    PING,
    PONG,
    TEXT,
    ReadHub,
    WebSocket,
)
from tests.support.deflate_peer import DeflatePeer
from tests.support.ocpp_listener import start_listener
from tests.support.wait import wait_until

Event = tuple[int, str | bytes, int]

MESSAGES: list[str | bytes] = [
    "",
    '[2,"1","Heartbeat",{}]',
    "é" * 63,  # 126 bytes: the 16-bit length form
    "x" * 65535,
    "y" * 70_001,  # the 64-bit length form
    b"\x00\xff" * 40,
]


SMALL = [*MESSAGES[:3], MESSAGES[-1]]
"""Every length form but the large ones: small enough to split at every byte."""


def _expected(messages: list[str | bytes]) -> list[Event]:
    events: list[Event] = [(TEXT if isinstance(m, str) else BINARY, m, 0) for m in messages]
    events.append((TEXT, "fragmented, with a ping between", 0))
    return [
        *events[:-1],
        (PING, b"ping data", 0),
        events[-1],
        (PONG, b"", 0),
        (CLOSE, "done", 1000),
    ]


def _wsproto_client_bytes(messages: list[str | bytes]) -> bytes:
    client = Connection(ConnectionType.CLIENT)
    out = b"".join(
        client.send(TextMessage(m) if isinstance(m, str) else BytesMessage(m)) for m in messages
    )
    out += client.send(TextMessage("fragmented, ", message_finished=False))
    out += client.send(Ping(b"ping data"))
    out += client.send(TextMessage("with a ping ", message_finished=False))
    out += client.send(TextMessage("between", message_finished=True))
    out += client.send(Pong(b""))
    return out + client.send(CloseConnection(code=1000, reason="done"))


def _websockets_client_bytes(messages: list[str | bytes]) -> bytes:
    frames = [
        Frame(Opcode.TEXT if isinstance(m, str) else Opcode.BINARY, _bytes(m)) for m in messages
    ]
    frames += [
        Frame(Opcode.TEXT, b"fragmented, ", fin=False),
        Frame(Opcode.PING, b"ping data"),
        Frame(Opcode.CONT, b"with a ping ", fin=False),
        Frame(Opcode.CONT, b"between"),
        Frame(Opcode.PONG, b""),
        Frame(Opcode.CLOSE, Close(1000, "done").serialize()),
    ]
    return b"".join(frame.serialize(mask=True) for frame in frames)


def _bytes(message: str | bytes) -> bytes:
    return message.encode() if isinstance(message, str) else message


Peer = Callable[[list[str | bytes]], bytes]
PEERS = [_wsproto_client_bytes, _websockets_client_bytes]


@pytest.mark.parametrize("peer", PEERS, ids=["wsproto", "websockets"])
def test_client_frames_decode_whole_and_byte_by_byte(peer: Peer) -> None:
    data = peer(MESSAGES)
    assert WebSocketDecoder(1 << 20).receive(data) == _expected(MESSAGES)
    decoder = WebSocketDecoder(1 << 20)
    events = [event for i in range(len(data)) for event in decoder.receive(data[i : i + 1])]
    assert events == _expected(MESSAGES)


@pytest.mark.parametrize("peer", PEERS, ids=["wsproto", "websockets"])
def test_client_frames_split_at_every_byte(peer: Peer) -> None:
    data = peer(SMALL)
    for split in range(len(data) + 1):
        decoder = WebSocketDecoder(1 << 20)
        events = decoder.receive(data[:split]) + decoder.receive(data[split:])
        assert events == _expected(SMALL), split


def _read_with_wsproto(data: bytes) -> list[object]:
    client = Connection(ConnectionType.CLIENT)
    client.receive_data(data)
    return list(client.events())


def _read_with_websockets(data: bytes, count: int) -> list[Frame]:
    reader = StreamReader()
    reader.feed_data(data)
    frames = []
    for _ in range(count):
        parser = Frame.parse(reader.read_exact, mask=False)
        with pytest.raises(StopIteration) as done:
            next(parser)
        frames.append(done.value.value)
    return frames


def test_server_frames_read_back_by_both_peers() -> None:
    data = b"".join(
        encode_websocket_frame(TEXT if isinstance(m, str) else BINARY, m) for m in MESSAGES
    )
    data += encode_websocket_frame(PING, b"p") + encode_websocket_close(1001, "going away")
    events = _read_with_wsproto(data)
    messages = [e for e in events if isinstance(e, Message)]
    assert [e.data for e in messages] == MESSAGES
    assert isinstance(events[-2], Ping)
    assert events[-2].payload == b"p"
    assert isinstance(events[-1], CloseConnection)
    assert (events[-1].code, events[-1].reason) == (CloseReason.GOING_AWAY, "going away")
    frames = _read_with_websockets(data, len(MESSAGES) + 2)
    assert [f.data for f in frames[: len(MESSAGES)]] == [_bytes(m) for m in MESSAGES]
    assert Close.parse(frames[-1].data) == Close(1001, "going away")


def _masked(first: int, payload: bytes) -> bytes:
    """A client frame with the given first byte (FIN, RSV, opcode) and a zero mask."""
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", first, 0x80 | length)
    else:
        header = struct.pack("!BBH", first, 0x80 | 126, length)
    return header + b"\0\0\0\0" + payload


def test_a_broken_frame_ends_decoding_with_its_close_code() -> None:
    decoder = WebSocketDecoder(100)
    good = _masked(0x81, b"ok")
    assert decoder.receive(good + _masked(0x82, bytes(101)) + good) == [
        (TEXT, "ok", 0),
        (FAILED, "message over the size limit", 1009),
    ]
    assert decoder.receive(good) == [(FAILED, "message over the size limit", 1009)]


MALFORMED = [
    ("unmasked", b"\x81\x02hi", 1002),
    ("RSV2 set", _masked(0xA1, b"x"), 1002),
    ("RSV1 without permessage-deflate", _masked(0xC1, b"x"), 1002),
    ("opcode 3", _masked(0x83, b""), 1002),
    ("lone continuation", _masked(0x80, b"x"), 1002),
    ("fragmented ping", _masked(0x09, b""), 1002),
    ("close code 1005", _masked(0x88, struct.pack("!H", 1005)), 1002),
    ("text not UTF-8", _masked(0x81, b'[2,"1","Heartbeat",{"\xff":1}]'), 1007),
    ("over the size limit", _masked(0x82, bytes(2000)), 1009),
]


@pytest.mark.parametrize(("name", "frame", "code"), MALFORMED, ids=[m[0] for m in MALFORMED])
async def test_the_listener_closes_a_malformed_frame_with_its_code(
    nursery: trio.Nursery, name: str, frame: bytes, code: int
) -> None:
    running = await start_listener(nursery, limits=ListenerLimits(max_message_bytes=1000))
    with trio.fail_after(10):
        peer = await DeflatePeer.open(running.url("CP16"), "ocpp1.6", deflate=False)
        await peer.stream.send_all(frame)
        await peer.serve()
    closed = peer.protocol.close_rcvd
    assert closed is not None, name
    assert closed.code == code, name
    await peer.stream.aclose()


async def test_compressed_messages_round_trip_and_bad_deflate_data_gets_1007(
    nursery: trio.Nursery,
) -> None:
    running = await start_listener(nursery)
    with trio.fail_after(10):
        peer = await DeflatePeer.open(running.url("CP16"), "ocpp1.6")
        for n in range(3):
            peer.send([2, str(n), "Heartbeat", {}])
        await peer.flush()
        while len(peer.received) < 3:
            await peer._read_some()
            for event in peer.protocol.events_received():
                peer.received.append(bytes(event.data).decode())
        await peer.stream.send_all(_masked(0xC1, b"\xff\xff\xff\xff"))  # not deflate data
        await peer.serve()
    assert [r[:8] for r in peer.received] == ['[3,"0",{', '[3,"1",{', '[3,"2",{']
    closed = peer.protocol.close_rcvd
    assert closed is not None
    assert closed.code == 1007
    await peer.stream.aclose()


async def test_a_command_whose_epoch_passed_while_queued_is_not_written() -> None:
    """A frame waits behind another one the peer has not read yet; the fencing epoch of
    the command it carries passes meanwhile (another gateway leads): it is never written,
    and the connection ends instead (the charger dials whichever gateway leads)."""
    server_end, peer = trio.testing.lockstep_stream_pair()  # a write waits for the read
    socket = WebSocket(server_end, None, deflate=None, max_message_bytes=1024, max_queued_frames=8)
    held = [True]
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:

            async def serve() -> None:
                await socket.run()
                await server_end.aclose()  # as the listener does

            nursery.start_soon(serve)
            socket.queue_message('[3,"1",{}]')  # an answer: no guard
            await trio.testing.wait_all_tasks_blocked()  # its write waits for the peer
            socket.queue_message('[2,"2","Reset",{"type":"Hard"}]', guard=lambda: held[0])
            held[0] = False  # the lease is lost
            received = b""
            while chunk := await peer.receive_some(4096):
                received += chunk
    assert received == encode_websocket_frame(TEXT, b'[3,"1",{}]')
    assert socket.close_reason is not None


async def test_one_reader_serves_many_connections_and_keeps_their_failures_apart() -> None:
    """The listener's `ReadHub` reads every connection whose messages have a receiver, from
    one task: each gets its messages in order; a receiver that fails ends its own connection
    only (raised in that connection's task); a peer that leaves ends its connection; what
    arrives once no receiver is set waits for `get_message`."""
    hub = ReadHub()
    pairs = [trio.socket.socketpair() for _ in range(3)]
    sockets = [
        WebSocket(
            trio.SocketStream(ours),
            None,
            deflate=None,
            max_message_bytes=1024,
            max_queued_frames=8,
            hub=hub,
        )
        for ours, _ in pairs
    ]
    peers = [trio.SocketStream(theirs) for _, theirs in pairs]
    clients = [Connection(ConnectionType.CLIENT) for _ in pairs]
    received: list[list[str | bytes]] = [[] for _ in pairs]
    ended: list[str] = []

    def receiver(n: int) -> Callable[[str | bytes], None]:
        def receive(message: str | bytes) -> None:
            if message == "fail":
                raise RuntimeError(f"receiver {n} failed")
            received[n].append(message)

        return receive

    async def run(n: int) -> None:
        try:
            await sockets[n].run()
            ended.append(f"{n} ended")
        except* RuntimeError as group:
            ended.append(str(group.exceptions[0]))

    async def send(n: int, *messages: str) -> None:
        await peers[n].send_all(b"".join(clients[n].send(TextMessage(m)) for m in messages))

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(hub.run)
            for n, socket in enumerate(sockets):
                socket.deliver_to(receiver(n))
                nursery.start_soon(run, n)
            for n in range(3):
                await send(n, f"{n}a", f"{n}b")
            await wait_until(lambda: all(len(r) == 2 for r in received), "the first messages")
            # each one's first read was its own, then the hub reads all three
            await wait_until(lambda: len(hub._served) == 3, "the hub reading all three")

            await send(1, "fail", "1c")
            await wait_until(lambda: ended == ["receiver 1 failed"], "the failure")
            sockets[2].deliver_to(None)
            await send(2, "2c")
            assert await sockets[2].get_message() == "2c"
            await send(0, "0c")
            await wait_until(lambda: len(received[0]) == 3, "the third message")
            await peers[0].aclose()
            await wait_until(lambda: len(ended) == 2, "the end of the one left")
            nursery.cancel_scope.cancel()
    assert received == [["0a", "0b", "0c"], ["1a", "1b"], ["2a", "2b"]]
    assert ended == ["receiver 1 failed", "0 ended"]
    for stream in (*peers[1:], *(socket._stream for socket in sockets)):
        await stream.aclose()


async def test_with_deflate_agreed_only_the_larger_messages_are_compressed() -> None:
    """RFC 7692 6: a message may go uncompressed (RSV1 clear) on a connection that agreed
    permessage-deflate; ours are compressed from `COMPRESS_FROM_BYTES` on, and what is
    compressed inflates back with the agreed window (what every peer's decompressor does)."""
    agreed = PerMessageDeflate(client_max_window_bits=12)
    agreed.accept("permessage-deflate; client_max_window_bits")
    server_end, peer = trio.testing.memory_stream_pair()
    socket = WebSocket(
        server_end, None, deflate=agreed, max_message_bytes=1 << 20, max_queued_frames=8
    )
    small = '[3,"1",{"currentTime":"2026-12-07T12:00:00Z"}]'
    large = '[2,"2","GetConfiguration",{"key":[' + ",".join(['"HeartbeatInterval"'] * 60) + "]}]"
    assert len(small) < COMPRESS_FROM_BYTES <= len(large)
    frames = []
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(socket.run)
            for text in (small, large, large):
                socket.queue_message(text)
            received = b""
            while len(frames) < 3:
                data = await peer.receive_some()
                received += data
                frames = _split_frames(received)
            nursery.cancel_scope.cancel()
    assert [header for header, _ in frames] == [0x81, 0xC1, 0xC1]  # FIN, text; RSV1 on the two
    assert frames[0][1] == small.encode()
    inflate = zlib.decompressobj(-15)
    assert [inflate.decompress(p + b"\x00\x00\xff\xff") for _, p in frames[1:]] == [
        large.encode()
    ] * 2
    assert len(frames[2][1]) < len(frames[1][1])  # the window held the first one


def _split_frames(data: bytes) -> list[tuple[int, bytes]]:
    """(first byte, payload) of each complete unmasked server frame in `data`."""
    frames = []
    while len(data) >= 2:
        size, start = data[1] & 0x7F, 2
        if size == 126:
            size, start = int.from_bytes(data[2:4], "big"), 4
        if len(data) < start + size:
            break
        frames.append((data[0], data[start : start + size]))
        data = data[start + size :]
    return frames
