"""Fuzzing every listener with hypothesis (issue 19): OCPP frames (the malformed corpus,
mutated, and random JSON), Modbus TCP frames (random and mutated requests), API bodies
(random JSON, NaN and Infinity tokens, bytes). Each example runs a fresh listener and a
real peer; whatever arrives, the listener answers with the protocol's own error or closes
that one connection, and goes on serving the next. About 20 s in all."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hubgate._core import Request, Response, TcpClientCodec
from hubgate.config.model import SiteConfig
from hubgate.config.services import Api, ModbusServer
from hubgate.control.limits import LimitBook, LimitSource
from hubgate.modbus_api.server import serve_modbus
from hubgate.state import StateHub
from tests.support.api import AUTH, TOKEN, small_site, start_api
from tests.support.deflate_peer import DeflatePeer
from tests.support.modbus_server_process import ONE_CHARGER
from tests.support.ocpp_listener import start_listener
from tests.support.wait import wait_until

CORPUS = json.loads((Path(__file__).parent / "ocpp" / "malformed.json").read_text())["cases"]
FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=40),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.text(max_size=12), inner, max_size=5),
    ),
    max_leaves=20,
)


def _corpus_text(case: dict[str, Any]) -> str:
    frame = case["frame"]
    return frame if isinstance(frame, str) else "".join(text * n for text, n in frame)


SMALL_CORPUS = [_corpus_text(c) for c in CORPUS if len(_corpus_text(c)) < 4096]


@st.composite
def ocpp_frames(draw: st.DrawFn) -> str:
    """A corpus frame cut or spliced, an OCPP-J-shaped array of random parts, or any JSON."""
    kind = draw(st.sampled_from(["corpus", "shaped", "json"]))
    if kind == "corpus":
        text = draw(st.sampled_from(SMALL_CORPUS))
        cut = draw(st.integers(0, len(text)))
        return text[:cut] + draw(st.text(max_size=8, alphabet=st.characters(codec="utf-8")))
    if kind == "shaped":
        message_type = draw(st.sampled_from([2, 3, 4, 5, 6, 0, -1, 2.0, "2"]))
        action = draw(st.sampled_from(["Heartbeat", "BootNotification", "Authorize", "X"]))
        return json.dumps([message_type, draw(st.text(max_size=40)), action, draw(json_values)])
    return json.dumps(draw(json_values))


@FUZZ
@given(frames=st.lists(ocpp_frames(), min_size=1, max_size=30))
async def test_ocpp_listener_survives_any_frames(
    frames: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    with trio.fail_after(30), caplog.at_level(logging.ERROR, logger="hubgate"):
        async with trio.open_nursery() as nursery:
            running = await start_listener(nursery)
            peer = await DeflatePeer.open(running.url("CP16"), "ocpp1.6")
            peer.answering.set()
            nursery.start_soon(peer.serve)
            for frame in frames:
                peer.protocol.send_text(frame.encode())
            peer.send([2, "fuzz-last", "Heartbeat", {}])
            await peer.flush()
            await wait_until(
                lambda: any(text.startswith('[3,"fuzz-last"') for text in peer.received),
                "the answer to the last Heartbeat",
            )
            nursery.cancel_scope.cancel()
        await peer.stream.aclose()
    assert peer.garbled == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


addresses = st.integers(0, 0xFFFF - 125)  # room for the largest count below
requests = st.one_of(
    st.builds(Request.ReadHoldingRegisters, addresses, st.integers(1, 125)),
    st.builds(Request.ReadInputRegisters, addresses, st.integers(1, 125)),
    st.builds(Request.WriteSingleRegister, addresses, st.integers(0, 0xFFFF)),
    st.builds(
        Request.WriteMultipleRegisters,
        addresses,
        st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=10),
    ),
    st.builds(Request.ReadCoils, addresses, st.integers(1, 100)),
)


@st.composite
def modbus_frames(draw: st.DrawFn) -> bytes:
    """A valid request, one with a byte changed, or bytes after a plausible MBAP header."""
    frame = TcpClientCodec().encode_request(draw(st.integers(0, 255)), draw(requests))[1]
    kind = draw(st.sampled_from(["valid", "flipped", "random"]))
    if kind == "flipped":
        at = draw(st.integers(0, len(frame) - 1))
        return frame[:at] + bytes([draw(st.integers(0, 255))]) + frame[at + 1 :]
    if kind == "random":
        body = draw(st.binary(min_size=1, max_size=20))
        return bytes([0, 7, 0, 0, 0, len(body)]) + body
    return frame


@FUZZ
@given(frames=st.lists(modbus_frames(), min_size=1, max_size=20))
async def test_modbus_server_survives_any_frames(
    frames: list[bytes], caplog: pytest.LogCaptureFixture
) -> None:
    config = ModbusServer(port=0, allow_writes_from=("127.0.0.1",))
    limits = LimitBook()
    with trio.fail_after(30), caplog.at_level(logging.ERROR, logger="hubgate"):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(
                serve_modbus, config, SiteConfig.model_validate(ONE_CHARGER), StateHub(), limits
            )
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            async with stream:
                for frame in frames:
                    try:
                        await stream.send_all(frame)
                    except trio.BrokenResourceError:
                        break  # a header that made the rest meaningless: closed
            # The server goes on: a new client is answered.
            codec = TcpClientCodec()
            _tid, request = codec.encode_request(1, Request.ReadInputRegisters(0, 1))
            async with await trio.open_tcp_stream("127.0.0.1", port) as fresh:
                await fresh.send_all(request)
                while (event := codec.next_event()) is None:
                    codec.receive_data(await fresh.receive_some(512))
            nursery.cancel_scope.cancel()
    assert event.response == Response.ReadInputRegisters([1])  # type: ignore[union-attr]
    for lease in limits.leases():
        assert lease.source is LimitSource.MODBUS_SERVER
        assert all(math.isfinite(a) and a <= 10_000 for a in lease.limit.phase_a or ())
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


WRITES = [
    ("PUT", "/api/v1/limits/site"),
    ("PUT", "/api/v1/limits/nodes/board"),
    ("PUT", "/api/v1/limits/connectors/cp-1/1"),
    ("PUT", "/api/v1/connectors/cp-1/1/priority"),
    ("PUT", "/api/v1/connectors/cp-1/1/pv-mode"),
    ("POST", "/api/v1/connectors/cp-1/1/start"),
    ("PUT", "/api/v1/authorization/tokens/TAG-1"),
]
bodies = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {"phase_a": st.lists(json_scalars, max_size=4), "lease_s": json_scalars}
    ).map(lambda v: json.dumps(v).encode()),
    st.sampled_from([b'{"phase_a":[NaN,1,1],"lease_s":1}', b'{"power_kw":Infinity,"lease_s":1}']),
    st.binary(max_size=64),
)


@FUZZ
@given(requests=st.lists(st.tuples(st.sampled_from(WRITES), bodies, st.booleans()), max_size=12))
async def test_api_never_fails_on_any_body(
    requests: list[tuple[tuple[str, str], bytes, bool]], examples_dir: Path
) -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            running = await start_api(nursery, small_site(examples_dir, Api(port=0, token=TOKEN)))
            async with running.client as client:
                for (method, path), body, authorized in requests:
                    headers = {"Content-Type": "application/json", **(AUTH if authorized else {})}
                    response = await client.request(method, path, content=body, headers=headers)
                    assert response.status_code < 500, (path, body, response.text)
                    if not authorized:
                        assert response.status_code in (401, 429)
                health = await client.get("/api/v1/health")
                assert health.status_code in (200, 503)
            nursery.cancel_scope.cancel()
