"""Priority changes at run time: the control loop's command, directly and through the API.

The loop runs the in-memory site on Trio's MockClock (autojump); the API is
called in-process (ASGI), so that no socket waits on the virtual clock.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

import httpx
import pytest
import trio
import trio.testing

from hubgate.api import ApiContext
from hubgate.api.app import API_PREFIX, build_app
from hubgate.control.commands import CommandRejectedError
from hubgate.control.loop import ControlLoop
from tests.support.loop_site import SimSite, running_loop, site_config

TOKEN = "priority-test-token-0123"
API_TABLE = f'[api]\ntoken = "{TOKEN}"\n'


def running(sim: SimSite) -> AbstractAsyncContextManager[ControlLoop]:
    return running_loop(site_config(API_TABLE), sim.devices())


def served(loop: ControlLoop) -> tuple[dict[str, float], dict[str, int]]:
    """Setpoints and priorities in the last published state, by charger."""
    state = loop.hub.latest
    assert state is not None
    return (
        {c.charger: c.setpoint_a for c in state.connectors},
        {c.charger: c.priority for c in state.connectors},
    )


def priority_events(loop: ControlLoop) -> list[tuple[str, str]]:
    state = loop.hub.latest
    assert state is not None
    return [(e.subject, e.message) for e in state.events if "priority" in e.message]


async def test_a_raised_priority_is_served_first_from_the_next_cycles(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(SimSite.build()) as loop:
        await trio.sleep(40)
        setpoints, priorities = served(loop)
        assert min(setpoints.values()) >= 20  # fair: 64 A among three
        assert priorities == {"cp-1": 0, "cp-2": 0, "cp-3": 0}
        await loop.commands.set_priority("cp-3#1", 5)
        await trio.sleep(20)
        setpoints, priorities = served(loop)
        assert setpoints["cp-3"] == 32.0  # its own maximum, served first
        assert setpoints["cp-1"] + setpoints["cp-2"] <= 64.0 - 32.0
        assert priorities == {"cp-1": 0, "cp-2": 0, "cp-3": 5}
        assert priority_events(loop) == [("cp-3#1", "priority 0 -> 5")]


async def test_bad_priority_commands_are_refused_and_change_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(SimSite.build()) as loop:
        await trio.sleep(5)
        with pytest.raises(CommandRejectedError, match="cp-9#1: no such connector"):
            await loop.commands.set_priority("cp-9#1", 1)
        with pytest.raises(CommandRejectedError, match="from 0 to 9, got 10"):
            await loop.commands.set_priority("cp-1#1", 10)
        with pytest.raises(CommandRejectedError, match="from 0 to 9, got -1"):
            await loop.commands.set_priority("cp-1#1", -1)
        await trio.sleep(2)
        assert served(loop)[1] == {"cp-1": 0, "cp-2": 0, "cp-3": 0}
        assert priority_events(loop) == []


async def test_the_priority_endpoint_reaches_the_allocator(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(SimSite.build()) as loop:
        ctx = ApiContext(
            site=loop.site,
            hub=loop.hub,
            limits=loop.limits,
            decisions=loop.decisions,
            commands=loop.commands,
        )
        transport = httpx.ASGITransport(app=build_app(ctx))  # Host: localhost (trusted)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        url = f"{API_PREFIX}/connectors/cp-2/1/priority"
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            await trio.sleep(40)
            put = await client.put(url, json={"priority": 3}, headers=auth)
            assert put.status_code == 200
            assert put.json() == {"accepted": True, "detail": "cp-2#1 priority 3"}
            out_of_range = await client.put(url, json={"priority": 10}, headers=auth)
            assert out_of_range.status_code == 422
            await trio.sleep(20)
            state = (await client.get(f"{API_PREFIX}/state")).json()
        cp2 = next(c for c in state["connectors"] if c["charger"] == "cp-2")
        assert (cp2["priority"], cp2["setpoint_a"]) == (3, 32.0)
        assert priority_events(loop) == [("cp-2#1", "priority 0 -> 3")]
