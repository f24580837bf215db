"""The state hub: latest snapshot, readers wake on publish and skip stale snapshots."""

from __future__ import annotations

import trio
import trio.testing

from hubgate.state import SiteState, StateHub
from tests.support.states import connector, node, site_state


def snapshot(cycle: int) -> SiteState:
    grid = node("grid", measured_a=(50.0, 40.0, 30.0), limit_a=(100.0, 100.0, 80.0))
    return site_state(cycle=cycle, nodes=[grid], connectors=[connector("cp-1#1")])


def test_utilisation_uses_measured_then_commanded() -> None:
    state = snapshot(1)
    assert state.node("grid").utilisation() == 0.5
    unmetered = state.node("grid").model_copy(update={"measured_a": None})
    assert unmetered.utilisation() == 0.6


async def test_reader_gets_newest_and_skips_stale(autojump_clock: trio.testing.MockClock) -> None:
    hub = StateHub()
    assert hub.latest is None
    seen: list[int] = []

    async def reader() -> None:
        version = 0
        while True:
            version, state = await hub.wait_newer(version)
            seen.append(state.cycle)
            await trio.sleep(1)  # a slow reader
            if state.cycle >= 5:
                return

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            await trio.testing.wait_all_tasks_blocked()
            for cycle in range(1, 6):
                hub.publish(snapshot(cycle))
                await trio.sleep(0.4)
    assert seen[0] == 1
    assert seen[-1] == 5
    assert len(seen) < 5  # stale snapshots were skipped, the newest was not
    assert hub.latest is not None
    assert hub.latest.cycle == 5


async def test_a_snapshot_published_as_its_builder_is_built_once_when_read() -> None:
    hub = StateHub()
    built: list[int] = []

    def build(cycle: int) -> SiteState:
        built.append(cycle)
        return snapshot(cycle)

    hub.publish(lambda: build(1))
    hub.publish(lambda: build(2))
    assert built == []  # nobody read cycle 1 or 2 yet: neither was built
    with trio.fail_after(5):
        version, state = await hub.wait_newer(0)
    assert (version, state.cycle) == (2, 2)
    assert hub.latest is state
    assert built == [2]  # the newest only, once
    hub.publish(snapshot(3))
    assert hub.latest is not None
    assert hub.latest.cycle == 3
    assert built == [2]
