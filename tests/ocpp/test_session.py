"""The session's own rules, driven frame by frame over an in-memory connection:
concurrent incoming calls, the concurrency cap, failing handlers, 2.1 CallResultError."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import trio
from trio_websocket import ConnectionClosed

from hubgate.ocpp.errors import OcppCallError, RpcError
from hubgate.ocpp.rpc import Payload
from hubgate.ocpp.session import Handler, OcppSession, SessionLimits
from hubgate.ocpp.versions import OcppVersion


class MemoryConnection:
    """Both ends of a text connection; the test plays the charger end."""

    def __init__(self) -> None:
        self._to_session, self._session_inbox = trio.open_memory_channel[str](100)
        self._to_charger, self.charger_inbox = trio.open_memory_channel[str](100)

    async def get_message(self) -> str:
        try:
            return await self._session_inbox.receive()
        except trio.EndOfChannel:
            raise ConnectionClosed(None) from None

    async def send_message(self, message: str | bytes) -> None:
        await self._to_charger.send(str(message))

    async def aclose(self, code: int = 1000, reason: str | None = None) -> None:
        await self._to_session.aclose()

    async def charger_sends(self, frame: list[Any]) -> None:
        await self._to_session.send(json.dumps(frame))

    async def charger_receives(self) -> list[Any]:
        frame: list[Any] = json.loads(await self.charger_inbox.receive())
        return frame


@pytest.fixture
async def wire() -> MemoryConnection:
    return MemoryConnection()


async def start(
    nursery: trio.Nursery,
    wire: MemoryConnection,
    handlers: dict[str, Handler],
    version: OcppVersion = OcppVersion.V16,
    **limits: Any,
) -> OcppSession:
    session = OcppSession(wire, version, handlers, identity="T", limits=SessionLimits(**limits))
    await nursery.start(session.run)
    return session


async def test_a_slow_call_does_not_hold_up_the_next(
    nursery: trio.Nursery, wire: MemoryConnection
) -> None:
    release = trio.Event()

    async def slow_authorize(p: Payload) -> Payload:
        await release.wait()
        return {"idTagInfo": {"status": "Accepted"}}

    async def heartbeat(p: Payload) -> Payload:
        return {"currentTime": "2026-11-25T12:00:00Z"}

    await start(nursery, wire, {"Authorize": slow_authorize, "Heartbeat": heartbeat})
    with trio.fail_after(5):
        await wire.charger_sends([2, "slow", "Authorize", {"idTag": "A"}])
        await wire.charger_sends([2, "fast", "Heartbeat", {}])
        assert (await wire.charger_receives())[:2] == [3, "fast"]
        release.set()
        assert (await wire.charger_receives())[:2] == [3, "slow"]


async def test_calls_beyond_the_cap_are_refused(
    nursery: trio.Nursery, wire: MemoryConnection
) -> None:
    never = trio.Event()

    async def stuck(p: Payload) -> Payload:
        await never.wait()
        return {}

    await start(nursery, wire, {"Heartbeat": stuck}, max_concurrent_calls=2)
    with trio.fail_after(5):
        for n in range(3):
            await wire.charger_sends([2, f"c{n}", "Heartbeat", {}])
        assert await wire.charger_receives() == [
            4,
            "c2",
            "GenericError",
            "too many concurrent calls",
            {},
        ]


async def test_failing_handlers_become_internal_errors(
    nursery: trio.Nursery, wire: MemoryConnection, caplog: pytest.LogCaptureFixture
) -> None:
    async def crash(p: Payload) -> Payload:
        raise KeyError("boom")

    async def wrong(p: Payload) -> Payload:
        return {"currentTime": 5}

    await start(nursery, wire, {"Authorize": crash, "Heartbeat": wrong})
    with trio.fail_after(5), caplog.at_level(logging.ERROR, logger="hubgate.ocpp"):
        await wire.charger_sends([2, "a", "Authorize", {"idTag": "A"}])
        assert (await wire.charger_receives())[:3] == [4, "a", "InternalError"]
        await wire.charger_sends([2, "b", "Heartbeat", {}])
        assert (await wire.charger_receives())[:3] == [4, "b", "InternalError"]
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 2


async def test_an_invalid_result_gets_a_callresulterror_in_21(
    nursery: trio.Nursery, wire: MemoryConnection
) -> None:
    session = await start(nursery, wire, {}, OcppVersion.V21)
    with trio.fail_after(5):
        async with trio.open_nursery() as inner:

            async def charger() -> None:
                call = await wire.charger_receives()
                assert call[2] == "Reset"
                await wire.charger_sends([3, call[1], {"status": "Maybe"}])
                error = await wire.charger_receives()
                assert error[:3] == [5, call[1], "PropertyConstraintViolation"]

            inner.start_soon(charger)
            with pytest.raises(OcppCallError) as failed:
                await session.call("Reset", {"type": "Immediate"})
            assert failed.value.code == "PropertyConstraintViolation"


async def test_an_invalid_outgoing_payload_is_never_sent(
    nursery: trio.Nursery, wire: MemoryConnection
) -> None:
    session = await start(nursery, wire, {})
    with pytest.raises(RpcError):
        await session.call("Reset", {"type": "Sideways"})
    assert wire.charger_inbox.statistics().current_buffer_used == 0


async def test_our_calls_have_ids_of_their_own_per_connection(nursery: trio.Nursery) -> None:
    sent: list[str] = []
    for _ in range(2):
        wire = MemoryConnection()
        session = await start(nursery, wire, {})
        for _ in range(3):
            async with trio.open_nursery() as calls:
                calls.start_soon(session.call, "Reset", {"type": "Soft"})
                frame = await wire.charger_receives()
                await wire.charger_sends([3, frame[1], {"status": "Accepted"}])
            sent.append(frame[1])
    assert len(set(sent)) == 6
    assert all(0 < len(unique_id) <= 36 for unique_id in sent)  # OCPP-J's limit
