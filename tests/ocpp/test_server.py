"""The listener: admission (404, 401, subprotocols), reconnects, limits, pings, call timeouts."""

from __future__ import annotations

import base64
import json
import socket
from typing import Any

import pytest
import trio
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from hubgate.config.services import OcppServer
from hubgate.ocpp.errors import OcppCallTimeoutError, OcppSessionClosedError
from hubgate.ocpp.policy import CsmsPolicy
from hubgate.ocpp.server import ListenerLimits
from tests.support.ocpp_listener import PASSWORD, V16, Running, start_listener


def open_raw(url: str, protocol: str = "ocpp1.6", **kwargs: Any) -> ClientConnection:
    return connect(url, subprotocols=[protocol], proxy=None, open_timeout=5, legacy=True, **kwargs)  # type: ignore[list-item]


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def status_of_attempt(url: str, **kwargs: Any) -> int:
    try:
        open_raw(url, **kwargs).close()
    except InvalidStatus as exc:
        return exc.response.status_code
    return 101


def heartbeat(ws: ClientConnection, unique_id: str = "hb") -> list[Any]:
    ws.send(json.dumps([2, unique_id, "Heartbeat", {}]))
    answer: list[Any] = json.loads(ws.recv(timeout=5))
    return answer


async def test_unknown_identity_gets_404(server: Running) -> None:
    with trio.fail_after(10):
        status = await trio.to_thread.run_sync(status_of_attempt, server.url("NOBODY"))
    assert status == 404


async def test_security_profile_1_needs_the_charger_password(nursery: trio.Nursery) -> None:
    running = await start_listener(nursery, OcppServer(port=0, security_profile=1))
    url = running.url("CP16")
    with trio.fail_after(10):
        assert await trio.to_thread.run_sync(status_of_attempt, url) == 401
        wrong = basic("CP16", "not-the-password!")
        assert (
            await trio.to_thread.run_sync(lambda: status_of_attempt(url, additional_headers=wrong))
            == 401
        )
        other = basic("CP201", PASSWORD)
        assert (
            await trio.to_thread.run_sync(lambda: status_of_attempt(url, additional_headers=other))
            == 401
        )
        right = basic("CP16", PASSWORD)
        assert (
            await trio.to_thread.run_sync(lambda: status_of_attempt(url, additional_headers=right))
            == 101
        )
    nursery.cancel_scope.cancel()


async def test_no_common_subprotocol_accepts_without_one_then_closes(server: Running) -> None:
    def attempt() -> tuple[str | None, int | None]:
        with open_raw(server.url("CP16"), protocol="ocpp2.0.1") as ws:
            chosen = ws.subprotocol
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=5)
            return chosen, closed.value.rcvd.code if closed.value.rcvd else None

    with trio.fail_after(10):
        chosen, code = await trio.to_thread.run_sync(attempt)
    assert chosen is None
    assert code == 1002


async def test_the_newest_allowed_version_offered_wins(server: Running) -> None:
    def chosen() -> str | None:
        with connect(
            server.url("CP201"), subprotocols=["ocpp1.6", "ocpp2.0.1", "ocpp2.1"], proxy=None
        ) as ws:  # type: ignore[list-item]
            return ws.subprotocol

    with trio.fail_after(10):
        assert await trio.to_thread.run_sync(chosen) == "ocpp2.0.1"


async def test_permessage_deflate_is_negotiated(server: Running) -> None:
    """With the client's compressor asked for a 4 KiB window where it lets the server choose
    (websockets offers `client_max_window_bits`): the server's decompressor keeps 11 KiB a
    connection instead of 40; the heartbeat still goes through both ways."""

    def extensions() -> str:
        with open_raw(server.url("CP16")) as ws:
            assert heartbeat(ws)[0] == 3
            assert ws.response is not None
            return ws.response.headers.get("Sec-WebSocket-Extensions", "")

    with trio.fail_after(10):
        agreed = await trio.to_thread.run_sync(extensions)
    assert "permessage-deflate" in agreed
    assert "client_max_window_bits=12" in agreed


async def test_reconnect_replaces_the_old_session(server: Running) -> None:
    with trio.fail_after(10):
        first = await trio.to_thread.run_sync(open_raw, server.url("CP16"))
        old_session = await server.session_of("CP16")
        second = await trio.to_thread.run_sync(open_raw, server.url("CP16"))
        await old_session.wait_closed()
        with pytest.raises(ConnectionClosed):
            await trio.to_thread.run_sync(lambda: first.recv(timeout=5))
        assert (await trio.to_thread.run_sync(heartbeat, second))[0] == 3
        assert old_session.closed
        await trio.to_thread.run_sync(second.close)


async def test_oversize_message_closes_only_that_connection(nursery: trio.Nursery) -> None:
    running = await start_listener(nursery, limits=ListenerLimits(max_message_bytes=100_000))
    with trio.fail_after(10):
        victim = await trio.to_thread.run_sync(open_raw, running.url("CP16-0"))
        bystander = await trio.to_thread.run_sync(open_raw, running.url("CP16-1"))

        def flood() -> int | None:
            victim.send(
                json.dumps([2, "big", "DataTransfer", {"vendorId": "x", "data": "y" * 200_000}])
            )
            with pytest.raises(ConnectionClosed) as closed:
                victim.recv(timeout=5)
            return closed.value.rcvd.code if closed.value.rcvd else None

        assert await trio.to_thread.run_sync(flood) == 1009
        assert (await trio.to_thread.run_sync(heartbeat, bystander))[0] == 3
        await trio.to_thread.run_sync(bystander.close)
    nursery.cancel_scope.cancel()


async def test_silent_peer_is_dropped_by_pings_and_slow_handshake_times_out(
    nursery: trio.Nursery,
) -> None:
    limits = ListenerLimits(ping_interval_s=0.1, ping_timeout_s=0.2, handshake_timeout_s=0.3)
    running = await start_listener(nursery, limits=limits)
    with trio.fail_after(10):
        # A TCP client that never finishes the HTTP handshake is cut off.
        idle = await trio.open_tcp_stream("127.0.0.1", running.port)
        assert await idle.receive_some() == b""
        # A WebSocket peer that completes the upgrade, then goes silent (answers no ping).
        stream = await trio.open_tcp_stream("127.0.0.1", running.port)
        await stream.send_all(
            b"GET /ocpp/CP16 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Protocol: ocpp1.6\r\n\r\n"
        )
        session = await running.session_of("CP16")
        await session.wait_closed()
        while await stream.receive_some():  # the server's bytes, then end of stream
            pass
        await stream.aclose()
        await idle.aclose()
    nursery.cancel_scope.cancel()


async def test_pending_boot_policy(nursery: trio.Nursery) -> None:
    running = await start_listener(nursery, policy=CsmsPolicy(boot_status="Pending"))
    boot = [2, "b", "BootNotification", {"chargePointVendor": "v", "chargePointModel": "m"}]

    def exchange() -> list[Any]:
        with open_raw(running.url("CP16")) as ws:
            ws.send(json.dumps(boot))
            answer: list[Any] = json.loads(ws.recv(timeout=5))
            return answer

    with trio.fail_after(10):
        answer = await trio.to_thread.run_sync(exchange)
    assert answer[2]["status"] == "Pending"
    assert answer[2]["interval"] == 30
    nursery.cancel_scope.cancel()


async def test_outgoing_call_times_out_while_incoming_calls_are_still_served(
    server: Running,
) -> None:
    with trio.fail_after(10):
        ws = await trio.to_thread.run_sync(open_raw, server.url("CP16"))
        session = await server.session_of("CP16")

        def ignore_the_call_but_send_one() -> tuple[list[Any], list[Any]]:
            ours = json.loads(ws.recv(timeout=5))
            return ours, heartbeat(ws)  # crosses the pending call

        async with trio.open_nursery() as nursery:
            seen: list[tuple[list[Any], list[Any]]] = []

            async def charger() -> None:
                seen.append(await trio.to_thread.run_sync(ignore_the_call_but_send_one))

            nursery.start_soon(charger)
            with pytest.raises(OcppCallTimeoutError):
                await session.call("Reset", {"type": "Hard"}, timeout_s=0.5)
        ours, answer = seen[0]
        assert ours[0] == 2
        assert ours[2] == "Reset"
        assert answer[0] == 3
        await trio.to_thread.run_sync(ws.close)
        await session.wait_closed()
        with pytest.raises(OcppSessionClosedError):
            await session.call("Reset", {"type": "Hard"}, timeout_s=1)


async def test_call_in_flight_fails_when_the_connection_drops(server: Running) -> None:
    with trio.fail_after(10):
        ws = await trio.to_thread.run_sync(open_raw, server.url("CP16"))
        session = await server.session_of("CP16")

        async def drop_after_call_arrives() -> None:
            await trio.to_thread.run_sync(lambda: ws.recv(timeout=5))
            await trio.to_thread.run_sync(ws.close)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(drop_after_call_arrives)
            with pytest.raises(OcppSessionClosedError):
                await session.call("Reset", {"type": "Soft"}, timeout_s=5)
    assert V16 in server.registry.get("CP16").admission.versions  # type: ignore[union-attr]


async def test_identity_is_the_percent_decoded_last_path_segment(server: Running) -> None:
    def exchange(path: str) -> list[Any]:
        with open_raw(f"ws://127.0.0.1:{server.port}{path}") as ws:
            return heartbeat(ws)

    with trio.fail_after(10):
        assert (await trio.to_thread.run_sync(exchange, "/CP%316"))[0] == 3
        assert (await trio.to_thread.run_sync(exchange, "/a/b/CP16/?x=1"))[0] == 3
        assert await trio.to_thread.run_sync(status_of_attempt, server.url("CP16/extra")) == 404


async def test_compressed_bomb_is_cut_off_at_the_size_limit(server: Running) -> None:
    """20 MB of JSON that deflates to ~20 kB: inflated a receive chunk at a time, closed 1009."""

    def bomb() -> int | None:
        with open_raw(server.url("CP16-2")) as ws:
            frame = json.dumps(
                [2, "z", "DataTransfer", {"vendorId": "x", "data": " " * 20_000_000}]
            )
            ws.send(frame)
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
            return closed.value.rcvd.code if closed.value.rcvd else None

    with trio.fail_after(20):
        assert await trio.to_thread.run_sync(bomb) == 1009
        ws = await trio.to_thread.run_sync(open_raw, server.url("CP16-3"))
        assert (await trio.to_thread.run_sync(heartbeat, ws))[0] == 3
        await trio.to_thread.run_sync(ws.close)


async def test_failed_basic_logins_are_rate_limited_per_source(nursery: trio.Nursery) -> None:
    """Issue 19: about 1,000 guesses a second went unthrottled. After 10 failures in a minute
    a source gets 429 (Retry-After) without its password being checked; others do not."""
    running = await start_listener(nursery, OcppServer(port=0, security_profile=1))
    url = running.url("CP16")
    wrong = basic("CP16", "not-the-password!")
    right = basic("CP16", PASSWORD)

    def attempt(headers: dict[str, str], source: str = "127.0.0.1") -> int:
        sock = socket.create_connection(("127.0.0.1", running.port), source_address=(source, 0))
        return status_of_attempt(url, additional_headers=headers, sock=sock)

    with trio.fail_after(30):
        for _ in range(10):
            assert await trio.to_thread.run_sync(attempt, wrong) == 401
        assert await trio.to_thread.run_sync(attempt, wrong) == 429
        assert await trio.to_thread.run_sync(attempt, right) == 429  # not even checked
        assert await trio.to_thread.run_sync(attempt, right, "127.0.0.2") == 101
    assert 0 < running.listener.auth_failures.retry_after("127.0.0.1") <= 60
    nursery.cancel_scope.cancel()
