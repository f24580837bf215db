"""The simulator, in its own process, killed under a running gateway (a power cut at the
site's devices): their loss is one aggregated event, logged as one line."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import trio

from hubgate.records.store import EventQuery
from hubgate.runtime.gateway import Gateway, open_gateway
from hubgate.runtime.sim_process import open_sim_process
from hubgate.state import Event, EventCategory, EventLevel
from tests.support.wait import wait_until

SCENARIO = Path(__file__).parent / "quiet-scenario.toml"
DEVICES = 9
"""6 chargers (3 OCPP, 3 Modbus), 2 meters and the grid operator's box."""


def all_reachable(gateway: Gateway) -> bool:
    latest = gateway.loop.hub.latest
    return latest is not None and sum(1 for d in latest.devices if d.reachable) == DEVICES


def unreachable_events(gateway: Gateway, after_id: int) -> list[Event]:
    events = gateway.loop.events.query(EventQuery(after_id=after_id, limit=1000))
    return [e for e in events if e.category == EventCategory.DEVICE and "unreachable" in e.message]


@pytest.mark.timeout(200)
async def test_a_killed_simulator_is_one_unreachable_event_and_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="hubgate.events")  # what `hubgate run` prints
    with trio.fail_after(180):
        async with open_sim_process(SCENARIO) as served, open_gateway(served.site) as gateway:
            await wait_until(lambda: all_reachable(gateway), "every device answering", 90)
            recent = gateway.loop.events.recent
            seen = recent[-1].id if recent else 0
            caplog.clear()
            served.kill()
            lost = await wait_until(
                lambda: unreachable_events(gateway, seen), "the devices' loss as an event", 60
            )
    [event] = lost  # every device in it: none can be lost again, nothing else comes
    assert event.severity == EventLevel.WARNING
    assert event.message.startswith(f"{DEVICES} devices unreachable on grid"), event
    assert len(event.members) == DEVICES
    logged = [
        r for r in caplog.records if r.name == "hubgate.events" and "unreachable" in r.message
    ]
    assert [r.getMessage() for r in logged] == [event.line()]
    assert logged[0].levelno == logging.WARNING
