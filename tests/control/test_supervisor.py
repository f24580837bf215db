"""Supervised tasks restart with backoff and never take the others down."""

from __future__ import annotations

import itertools
import random

import pytest
import trio
import trio.testing

from hubgate.backoff import Backoff
from hubgate.runtime.supervisor import open_supervisor


def test_backoff_grows_to_ceiling_with_bounded_jitter() -> None:
    backoff = Backoff(initial_s=1, maximum_s=8, jitter=0.1)
    rng = random.Random(1)
    delays = [backoff.delay(attempt, rng) for attempt in range(6)]
    for attempt, delay in enumerate(delays):
        base = min(8, 2**attempt)
        assert base * 0.9 <= delay <= base * 1.1


async def test_failing_task_restarts_and_others_keep_running(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    starts: list[float] = []
    ticks = 0

    async def flaky() -> None:
        starts.append(trio.current_time())
        await trio.sleep(0.1)
        raise RuntimeError("device gone")

    async def steady() -> None:
        nonlocal ticks
        while True:
            await trio.sleep(1)
            ticks += 1

    with trio.move_on_after(20):
        async with open_supervisor(Backoff(initial_s=1, maximum_s=4, jitter=0)) as sup:
            sup.start("flaky", flaky)
            sup.start("steady", steady)
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(starts)]
    assert gaps[:4] == [1.1, 2.1, 4.1, 4.1]
    assert ticks == 19
    health = sup.health["flaky"]
    assert health.restarts == len(starts)
    assert health.last_error == "RuntimeError: device gone"
    assert sup.health["steady"].running
    assert "task flaky failed" in caplog.text


async def test_backoff_resets_after_stable_run(autojump_clock: trio.testing.MockClock) -> None:
    starts: list[float] = []

    async def fails_after_long_run() -> None:
        starts.append(trio.current_time())
        await trio.sleep(100 if len(starts) == 3 else 0)
        raise RuntimeError("x")

    with trio.move_on_after(120):
        async with open_supervisor(
            Backoff(initial_s=1, maximum_s=30, jitter=0, stable_after_s=60)
        ) as sup:
            sup.start("t", fails_after_long_run)
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(starts)]
    assert gaps[:3] == [1, 2, 101]


async def test_task_that_returns_is_finished(autojump_clock: trio.testing.MockClock) -> None:
    async def once() -> None:
        await trio.sleep(1)

    async with open_supervisor() as sup:
        sup.start("once", once)
    assert sup.health["once"].finished
    assert sup.health["once"].restarts == 0


async def test_duplicate_name_rejected() -> None:
    async def idle() -> None:
        return None

    async with open_supervisor() as sup:
        sup.start("a", idle)
        with pytest.raises(ValueError, match="already supervised"):
            sup.start("a", idle)
