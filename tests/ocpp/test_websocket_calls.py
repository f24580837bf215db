"""A frame's bytes to a hot call's fields in one Rust call (`WebSocketDecoder` given the
session's `OcppCallReader`): against wsproto's and websockets' client frames, split at
every byte; read from the socket itself (`receive_from`); and a session over a WebSocket
answers and keeps the same with it as through the text path, frame after frame."""

from __future__ import annotations

import functools
import json
import os
import socket
import zlib
from typing import Any

import pytest
import trio
from wsproto.extensions import PerMessageDeflate

from hubgate._core import WebSocketDecoder
from hubgate.ocpp.session import HotCalls, OcppSession
from hubgate.ocpp.validation import hot_reader
from hubgate.ocpp.versions import OcppVersion
from hubgate.ocpp.websocket import FAILED, HOT, TEXT, WebSocket
from tests.ocpp.test_call_reader import CORPUS, VALID, station_handlers
from tests.ocpp.test_call_reader import HOT as HOT_ACTIONS
from tests.ocpp.test_websocket import PEERS, Peer, _expected

V16, V201, V21 = OcppVersion.V16, OcppVersion.V201, OcppVersion.V21
CALLS = [
    json.dumps([2, "m1", "MeterValues", VALID[V16][3][1]]),
    json.dumps([2, "a1", "Authorize", {"idTag": "T"}]),  # not a hot call
    '[2, "h1", "Heartbeat", {}]',
    '[2, "h2", "Heartbeat", {"x": 1}]',  # a hot action, not valid: the text path names it
    json.dumps([2, "s1", "StatusNotification", VALID[V16][1][1]], ensure_ascii=False),
]


def _read_expected(messages: list[str]) -> list[Any]:
    """`_expected`, with each message the reader reads as its HOT event."""
    reader = hot_reader(V16, HOT_ACTIONS)
    out: list[Any] = []
    for kind, data, code in _expected(list(messages)):
        read = reader.read(data) if kind == TEXT and isinstance(data, str) else None
        out.append((HOT, read, 0) if read is not None else (kind, data, code))
    return out


def _decoder(max_bytes: int = 65536) -> WebSocketDecoder:
    decoder = WebSocketDecoder(1 << 20)
    decoder.read_calls(hot_reader(V16, HOT_ACTIONS), max_bytes)
    return decoder


@pytest.mark.parametrize("peer", PEERS, ids=["wsproto", "websockets"])
def test_hot_calls_come_out_read_whole_and_split_at_every_byte(peer: Peer) -> None:
    data = peer(list(CALLS))
    expected = _read_expected(CALLS)
    assert [kind for kind, _, _ in expected].count(HOT) == 3
    assert _decoder().receive(data) == expected
    for split in range(len(data) + 1):
        decoder = _decoder()
        assert decoder.receive(data[:split]) + decoder.receive(data[split:]) == expected, split


def test_a_message_over_the_limit_and_no_reader_are_text() -> None:
    data = PEERS[0]([CALLS[2]])
    over = _decoder(len(CALLS[2]) - 1).receive(data)
    assert over[0] == (TEXT, CALLS[2], 0)
    decoder = _decoder()
    decoder.read_calls(None, 65536)
    assert decoder.receive(data)[0] == (TEXT, CALLS[2], 0)


def test_receive_from_reads_the_socket_until_the_peer_closes() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.setblocking(False)
        decoder = _decoder()
        assert decoder.receive_from(ours.fileno()) == []  # nothing there yet
        data = PEERS[1](list(CALLS))
        theirs.sendall(data[:700])
        first = decoder.receive_from(ours.fileno())
        theirs.sendall(data[700:])
        rest = decoder.receive_from(ours.fileno())
        assert first is not None
        assert rest is not None
        assert first + rest == _read_expected(CALLS)
        theirs.close()
        assert decoder.receive_from(ours.fileno()) is None


class _Null(trio.abc.Stream):
    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        raise NotImplementedError

    async def wait_send_all_might_not_block(self) -> None:
        raise NotImplementedError

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        raise NotImplementedError

    async def aclose(self) -> None:
        pass


def _masked(payload: bytes, first: int = 0x81) -> bytes:
    mask, n = os.urandom(4), len(payload)
    length = bytes([0x80 | n]) if n < 126 else bytes([0xFE]) + n.to_bytes(2, "big")
    if n > 0xFFFF:
        length = bytes([0xFF]) + n.to_bytes(8, "big")
    return bytes([first]) + length + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def _agreed() -> PerMessageDeflate:
    """Permessage-deflate as `websockets`' client agrees it (both windows 15 bits, context
    kept); it compresses every message."""
    agreed = PerMessageDeflate()
    agreed.client_max_window_bits = agreed.server_max_window_bits = 15
    return agreed


def _answers(
    version: OcppVersion, texts: list[str], *, hot: bool, deflate: bool = False
) -> tuple[list[Any], Any]:
    """Each frame's answer (a Heartbeat's time left out) and the connectors' states after,
    the frames fed as a client's bytes (compressed: `deflate`) to a WebSocket whose session
    reads hot calls from them (`hot`) or from their text."""
    station, handlers = station_handlers(version)
    answers: list[Any] = []

    async def run() -> None:
        agreed = _agreed() if deflate else None
        ws = WebSocket(
            _Null(), None, deflate=agreed, max_message_bytes=1 << 20, max_queued_frames=1 << 20
        )
        compressor = zlib.compressobj(wbits=-15)
        session = OcppSession(ws, version, handlers, identity="CP")
        async with trio.open_nursery() as nursery:
            calls = session.hot_calls() if hot else None
            assert calls is None or isinstance(calls, HotCalls)
            ws.deliver_to(functools.partial(session._arrived, nursery=nursery), calls)
            for text in texts:
                data = text.encode()
                if deflate:
                    data = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
                    ws._take(_masked(data[:-4], 0xC1))
                else:
                    ws._take(_masked(data))
                frames = ws._out[:]
                ws._out.clear()
                ws._queued_messages = 0
                answer = None
                if frames:
                    [frame] = frames
                    body = frame[2:] if frame[1] < 126 else frame[4:]
                    answer = json.loads(body)
                if answer is not None and answer[0] == 3 and "currentTime" in answer[2]:
                    answer[2]["currentTime"] = "now"
                answers.append(answer)
            nursery.cancel_scope.cancel()

    trio.run(run)
    states = {
        n: (c.status, c.error_code, c.measurement) for n, c in sorted(station.connectors.items())
    }
    return answers, states


@pytest.mark.parametrize("deflate", [False, True], ids=["plain", "deflate"])
@pytest.mark.parametrize("version", [V16, V201, V21])
def test_a_session_over_a_websocket_answers_and_measures_alike(
    version: OcppVersion, deflate: bool
) -> None:
    texts = [t for v, t in CORPUS if v is version]
    hot = _answers(version, texts, hot=True, deflate=deflate)
    assert hot == _answers(version, texts, hot=False, deflate=deflate)


def test_a_compressed_text_is_read_once_inflated() -> None:
    decoder = _decoder()
    assert decoder.inflated_text(CALLS[2].encode()) == _read_expected([CALLS[2]])[0]
    assert decoder.inflated_text(CALLS[1].encode()) == (TEXT, CALLS[1], 0)
    assert decoder.inflated_text(b"\xff[") == (FAILED, "text message is not UTF-8", 1007)
