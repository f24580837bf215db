"""The OCPP listener against hostile and careless peers (issue 19, items 9 and 10): a peer
that does not read, idle connections, a second connection of an identity, invalid UTF-8,
connector ids the charger does not have, floods of bad frames in the log."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
import trio
from ocpp.exceptions import PropertyConstraintViolationError
from ocpp.v16 import call as call16

from hubgate.ocpp.registry import TRANSACTIONS_KEPT, Admission, Station, Transaction
from hubgate.ocpp.server import ListenerLimits
from hubgate.ocpp.session import SessionLimits
from hubgate.state import EventLevel
from tests.support.deflate_peer import DeflatePeer
from tests.support.events import RecordedEvents
from tests.support.floods import pipelined_heartbeats
from tests.support.ocpp_listener import V16, start_listener
from tests.support.wait import wait_until

PIPELINED = 300_000
"""The issue's flood: Heartbeats sent without reading a single answer."""


@pytest.mark.timeout(150)  # after its deadline, so that Trio ends it cleanly
async def test_a_charger_that_does_not_read_its_answers_is_dropped_with_an_event(
    nursery: trio.Nursery,
) -> None:
    recorded = RecordedEvents()
    events = recorded.emitted
    limits = ListenerLimits(session=SessionLimits(max_queued_frames=16))
    running = await start_listener(nursery, limits=limits, events=recorded)
    with trio.fail_after(120):
        sent = await pipelined_heartbeats(running.url("CP16"), PIPELINED)
        await wait_until(lambda: events, "the event")
    assert sent < PIPELINED  # dropped long before the flood ended
    assert events == [
        (EventLevel.WARNING, "CP16", "disconnected: 16 frames waiting, the charger does not read")
    ]
    assert running.registry.get("CP16").session is None  # type: ignore[union-attr]


async def test_idle_connections_cannot_lock_a_charger_out(nursery: trio.Nursery) -> None:
    running = await start_listener(nursery, limits=ListenerLimits(max_pending_connections=8))
    cap = running.listener.guard.max_connections  # 8 and one per configured identity
    idle = [await trio.open_tcp_stream("127.0.0.1", running.port) for _ in range(cap + 42)]
    with trio.fail_after(20):
        await wait_until(lambda: running.listener.guard.evicted >= 42, "the evictions")
        charger = await running.connect("CP16", V16)
        answer = await trio.to_thread.run_sync(
            charger.call, call16.BootNotification(charge_point_model="M", charge_point_vendor="V")
        )
    assert answer.status == "Accepted"
    assert running.listener.guard.counted <= cap  # the charger, admitted, is not counted
    await trio.to_thread.run_sync(charger.stop)
    for stream in idle:
        await stream.aclose()


async def test_a_whole_site_reconnecting_at_once_evicts_none_of_its_chargers(
    nursery: trio.Nursery,
) -> None:
    """Pending connections count against one slot per configured identity on top of the
    cap: a site of hundreds of chargers back after a power cut is not a flood."""
    running = await start_listener(nursery, limits=ListenerLimits(max_pending_connections=1))
    identities = sum(1 for _ in running.registry)
    pending: list[trio.SocketStream] = []
    try:
        with trio.fail_after(20):
            for _ in range(identities + 1):
                pending.append(await trio.open_tcp_stream("127.0.0.1", running.port))
            await wait_until(lambda: running.listener.guard.counted == identities + 1, "accepted")
            assert running.listener.guard.evicted == 0
            pending.append(await trio.open_tcp_stream("127.0.0.1", running.port))
            await wait_until(lambda: running.listener.guard.evicted == 1, "one eviction")
    finally:
        for stream in pending:
            await trio.aclose_forcefully(stream)


async def test_a_second_connection_of_an_identity_closes_the_first_with_a_close_frame(
    nursery: trio.Nursery,
) -> None:
    running = await start_listener(nursery)
    first = await DeflatePeer.open(running.url("CP16"), "ocpp1.6")
    first.answering.set()
    with trio.fail_after(10):
        async with trio.open_nursery() as reading:
            reading.start_soon(first.serve)
            second = await DeflatePeer.open(running.url("CP16"), "ocpp1.6")
        closed = first.protocol.close_rcvd
        assert closed is not None
        assert closed.code == 1000
        assert closed.reason == "replaced by a newer connection of this identity"
    await first.stream.aclose()
    await second.stream.aclose()


async def test_text_that_is_not_utf8_gets_a_1007_close(nursery: trio.Nursery) -> None:
    running = await start_listener(nursery)
    peer = await DeflatePeer.open(running.url("CP16"), "ocpp1.6")
    peer.protocol.send_text(b'[2,"1","Heartbeat",{"\xff":1}]')
    with trio.fail_after(10):
        await peer.flush()
        await peer.serve()
    closed = peer.protocol.close_rcvd
    assert closed is not None
    assert closed.code == 1007
    await peer.stream.aclose()


async def test_connector_ids_the_charger_does_not_have_are_refused(
    nursery: trio.Nursery,
) -> None:
    running = await start_listener(nursery)
    charger = await running.connect("CP16-2C", V16)

    def status(connector_id: int) -> object:
        return charger.call(
            call16.StatusNotification(
                connector_id=connector_id, error_code="NoError", status="Available"
            )
        )

    with trio.fail_after(20):
        for connector_id in (0, 1, 2):
            await trio.to_thread.run_sync(status, connector_id)
        for connector_id in (3, 99, 2**31 - 1):
            with pytest.raises(PropertyConstraintViolationError):
                await trio.to_thread.run_sync(status, connector_id)
    station = running.registry.get("CP16-2C")
    assert station is not None
    assert sorted(station.connectors) == [0, 1, 2]  # nothing kept for the others
    await trio.to_thread.run_sync(charger.stop)


async def test_finished_transactions_are_pruned_the_running_one_kept() -> None:
    station = Station(Admission("CP", "cp", (V16,), connectors=(1,)))
    now = datetime.now(UTC)
    running = Transaction("run", 1, None, now)
    station.remember(running)
    station.connector(1).run(running)
    for n in range(1000):
        done = Transaction(str(n), 1, None, now, stopped=now)
        station.remember(done)
        # A start the charger never stopped and no connector runs any more.
        station.remember(Transaction(f"lost-{n}", 1, None, now))
    assert len(station.transactions) == TRANSACTIONS_KEPT
    assert "run" in station.transactions
    assert "lost-999" in station.transactions  # the newest are kept


@pytest.mark.timeout(90)  # after its deadline, so that Trio ends it cleanly
async def test_hostile_frames_give_short_and_few_log_lines(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 19: rejected payloads and unknown action names were logged in full (30 MB/s)."""
    running = await start_listener(
        nursery, limits=ListenerLimits(session=SessionLimits(max_queued_frames=10_000))
    )
    peer = await DeflatePeer.open(running.url("CP16"), "ocpp1.6")
    action = "A" * 20_000
    junk = {"idTag": "x" * 20_000, "extra": "y" * 20_000}
    with caplog.at_level(logging.INFO, logger="hubgate.ocpp"), trio.fail_after(60):
        async with trio.open_nursery() as reading:
            reading.start_soon(peer.serve)
            for n in range(300):
                peer.send([2, f"a{n}", action, {}])  # unknown action
                peer.send([2, f"p{n}", "Authorize", junk])  # refused by the schema
                peer.send([9, f"t{n}", "x" * 1000])  # not a message type
                await peer.flush()
            peer.send([2, "last", "Heartbeat", {}])
            await peer.flush()
            await wait_until(lambda: any('"last"' in text for text in peer.received), "last")
            reading.cancel_scope.cancel()
    await peer.stream.aclose()
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) <= 6, lines  # one per kind and peer per 10 s, not 900
    assert max(len(line) for line in lines) < 600
    assert any("rejected (NotImplemented)" in line and "(20002 chars)" in line for line in lines)
    assert any("bad frame" in line for line in lines)
