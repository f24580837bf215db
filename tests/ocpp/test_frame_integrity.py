"""Frames stay whole under permessage-deflate when a call is cancelled on its way out.

The demo's garbled SetChargingProfile text (issue 19, item 11) came from here: a call
cancelled at the control cycle's deadline after its frame had gone through the
connection's compressor but before the bytes were written. The compressor's window
then held text the charger never saw, and every later frame that referred back to it
decompressed into fragments of other messages.
"""

from __future__ import annotations

import json

import pytest
import trio
import trio.testing

from hubgate.ocpp import websocket
from hubgate.ocpp.errors import OcppSessionClosedError
from tests.support.deflate_peer import DeflatePeer
from tests.support.ocpp_listener import Running

MARK = "SomeKeyOnlyTheCancelledCallAndTheNextOneName"


async def test_a_call_cancelled_on_its_way_out_garbles_no_later_frame(
    server: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(websocket, "COMPRESS_FROM_BYTES", 0)  # these small calls compressed too
    with trio.fail_after(10):
        peer = await DeflatePeer.open(server.url("CP16"), "ocpp1.6")
        session = await server.session_of("CP16")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(peer.serve)
            cancelled = trio.CancelScope()

            async def first() -> None:
                await session.call("GetConfiguration", {"key": ["HeartbeatInterval"]})
                # The second call was handed the call lock by this return and has not run
                # yet: the cycle deadline passing at this moment is what the demo hit.
                cancelled.cancel()

            async def second() -> None:
                with cancelled:
                    await session.call("GetConfiguration", {"key": [MARK]})

            nursery.start_soon(first)
            await peer.wait_calls(1)
            nursery.start_soon(second)
            await trio.testing.wait_all_tasks_blocked()  # the second call waits for the lock
            peer.answering.set()
            await trio.testing.wait_all_tasks_blocked()
            assert cancelled.cancelled_caught

            try:
                answer = await session.call("GetConfiguration", {"key": [MARK]}, timeout_s=3)
            except OcppSessionClosedError:  # the charger could not read our frame
                answer = None
            nursery.cancel_scope.cancel()
        await peer.stream.aclose()
    assert peer.garbled == []
    assert answer == {"configurationKey": [], "unknownKey": []}
    keys = [json.loads(text)[3]["key"] for text in peer.received]
    assert keys[0] == ["HeartbeatInterval"]
    assert keys[-1] == [MARK]
