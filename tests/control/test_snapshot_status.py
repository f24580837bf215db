"""`Snapshot.status`, the published cycle in brief (`hubgate run`'s status line), says what
the whole published state says, on the in-memory site under Trio's MockClock."""

from __future__ import annotations

import trio
import trio.testing

from hubgate.control.loop import ControlLoop
from tests.support.loop_site import SimSite, running_loop, site_config


def assert_status_is_the_state(loop: ControlLoop) -> None:
    status = loop.snapshot.status()
    state = loop.hub.latest
    assert status is not None
    assert state is not None
    assert status.cycle == state.cycle
    assert status.cycle_time_ms == state.cycle_time_ms
    assert status.grid == state.node("grid")
    assert status.charging == sum(1 for c in state.connectors if c.setpoint_a > 0)
    assert status.reachable == sum(1 for d in state.devices if d.reachable)
    assert status.devices == len(state.devices)


async def test_the_status_is_the_published_state_in_brief(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sim = SimSite.build()
    async with running_loop(site_config(), sim.devices()) as loop:
        await trio.sleep(20)
        assert_status_is_the_state(loop)
        status = loop.snapshot.status()
        assert status is not None
        assert status.charging > 0
        assert status.reachable == status.devices
        sim.charger("cp-1").reachable = False
        await trio.sleep(10)
        assert_status_is_the_state(loop)
        status = loop.snapshot.status()
        assert status is not None
        assert status.reachable == status.devices - 1
