"""Cycle cadence under MockClock, and per-device deadlines for concurrent reads."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from hubgate.control.cycle import TIMED_OUT, CycleStats, Failed, gather_by_deadline, run_cycles


async def test_fixed_cadence_without_drift(autojump_clock: trio.testing.MockClock) -> None:
    ticks: list[float] = []

    async def step(cycle: int, tick: float) -> None:
        ticks.append(round(tick - start, 6))
        await trio.sleep(0.03)  # work inside the cycle does not shift the next tick

    start = trio.current_time()
    with trio.move_on_after(1.05):
        await run_cycles(0.1, step)
    assert ticks == [round(0.1 * n, 6) for n in range(11)]


async def test_an_early_call_starts_a_cycle_and_the_cadence_from_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    starts: list[float] = []

    async def step(cycle: int, tick: float) -> None:
        starts.append(round(trio.current_time() - origin, 6))
        await trio.sleep(0.1)

    async def early() -> None:  # returns once, 1.35 s after the start
        if trio.current_time() >= origin + 1.35:
            await trio.sleep_forever()
        await trio.sleep_until(origin + 1.35)

    origin = trio.current_time()
    with trio.move_on_after(3.5):
        await run_cycles(1.0, step, early=early)
    assert starts == [0, 1, 1.35, 2.35, 3.35]


async def test_overrun_skips_missed_ticks(autojump_clock: trio.testing.MockClock) -> None:
    starts: list[float] = []

    async def step(cycle: int, tick: float) -> None:
        starts.append(round(trio.current_time() - origin, 6))
        await trio.sleep(2.5 if cycle == 1 else 0.1)

    origin = trio.current_time()
    with trio.move_on_after(6.5):
        async with trio.open_nursery() as nursery:
            stats: CycleStats = await nursery.start(run_cycles, 1.0, step)
    assert starts == [0, 1, 4, 5, 6]
    assert stats.overruns == 1
    assert stats.skipped_ticks == 2
    assert stats.cycles == 5
    assert stats.durations_s[1] == pytest.approx(2.5)


async def test_period_must_be_positive() -> None:
    async def step(cycle: int, tick: float) -> None:
        return None

    with pytest.raises(ValueError, match="period_s"):
        await run_cycles(0, step)


async def test_slow_device_does_not_delay_others(autojump_clock: trio.testing.MockClock) -> None:
    finished: dict[str, float] = {}

    def device(name: str, delay: float, fail: bool = False):  # type: ignore[no-untyped-def]
        async def read() -> int:
            await trio.sleep(delay)
            if fail:
                raise ConnectionResetError("peer closed")
            finished[name] = trio.current_time() - t0
            return len(name)

        return read

    t0 = trio.current_time()
    results = await gather_by_deadline(
        {
            "meter": device("meter", 0.01),
            "dead": device("dead", 3600),
            "late": device("late", 0.6),
            "broken": device("broken", 0.02, fail=True),
        },
        deadline=t0 + 0.5,
    )
    assert trio.current_time() - t0 == pytest.approx(0.5)
    assert results["meter"] == 5
    assert results["dead"] is TIMED_OUT
    assert results["late"] is TIMED_OUT
    failed = results["broken"]
    assert isinstance(failed, Failed)
    assert isinstance(failed.error, ConnectionResetError)
    assert finished == {"meter": pytest.approx(0.01)}
