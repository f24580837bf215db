"""The floods of issue 19 against a gateway (`hubgate run`, its own process, descriptor
limit 1,024): its resident memory before, at the peak (sampled every 50 ms) and after.

| case | the issue's figure (before the limits) |
|---|---|
| 300,000 Heartbeats pipelined by one charger that reads no answer | RSS 106 -> 639 MB, 253 MB still held after it left |
| three unauthenticated 100 MB bodies to the API | RSS 223 -> 613 MB |
| 2,000 idle connections on each listener (OCPP, Modbus server, API) | 1,100 idle Modbus connections locked everyone out |

The time measured is the flood's; the memory figures are in `extra_info`. The tests of
the same floods (tests/ocpp/test_listener_limits.py, tests/api/test_api_trust.py,
tests/runtime/test_descriptor_floods.py) check the bounds structurally.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.support.floods import (
    Gateway,
    close_all,
    open_idle,
    pipelined_heartbeats,
    running_gateway,
    unauthenticated_bodies,
)

NOFILE = 1024


async def _measured(gateway: Gateway, flood: Callable[[], Awaitable[object]]) -> dict[str, Any]:
    """RSS before, at the peak during `flood`, and once it is over; its result."""
    figures: dict[str, Any] = {"rss_before_mib": gateway.rss_mib()}
    peak = figures["rss_before_mib"]
    async with trio.open_nursery() as nursery:

        async def sample() -> None:
            nonlocal peak
            while True:
                peak = max(peak, gateway.rss_mib())
                await trio.sleep(0.05)

        nursery.start_soon(sample)
        figures["result"] = await flood()
        nursery.cancel_scope.cancel()
    await trio.sleep(6)  # the API closes idle connections after its 5 s keep-alive
    figures["rss_peak_mib"] = peak
    figures["rss_after_mib"] = gateway.rss_mib()
    figures["descriptors_after"] = gateway.open_descriptors()
    return figures


def run_flood(folder: Path, case: str, scale: float) -> dict[str, Any]:
    """One case against a fresh gateway; the figures."""
    figures: dict[str, Any] = {}

    async def main() -> None:
        async with running_gateway(folder, NOFILE) as gateway:
            await trio.sleep(2)  # settled after start
            if case == "pipelined-heartbeats":
                count = int(300_000 * scale)
                figures.update(
                    await _measured(gateway, lambda: pipelined_heartbeats(gateway.ocpp_url, count))
                )
                figures["heartbeats_sent_before_the_hang_up"] = figures.pop("result")
            elif case == "unauthenticated-bodies":
                size = int(100_000_000 * scale) // 65_536 * 65_536
                figures.update(
                    await _measured(gateway, lambda: unauthenticated_bodies(gateway.api, 3, size))
                )
                figures["statuses"] = figures.pop("result")
            else:
                count = int(2_000 * scale)

                async def flood() -> int:
                    idle: list[trio.SocketStream] = []
                    try:
                        for port in (gateway.ocpp, gateway.modbus, gateway.api):
                            idle.extend(await open_idle(port, count))
                        return gateway.open_descriptors()
                    finally:
                        await close_all(idle)

                figures.update(await _measured(gateway, flood))
                figures["descriptors_during"] = figures.pop("result")

    trio.run(main)
    return figures


@pytest.mark.timeout(900)
@pytest.mark.parametrize("impl", ["hubgate"])
@pytest.mark.parametrize(
    "case", ["pipelined-heartbeats", "unauthenticated-bodies", "idle-connections"]
)
def test_flood_memory(benchmark: Any, impl: str, case: str, tmp_path: Path, smoke: bool) -> None:
    """RSS of the gateway under each flood of issue 19 (scaled down 100x in the smoke run)."""
    benchmark.group = f"flood-{case}"
    scale = 0.01 if smoke else 1.0
    result = benchmark.pedantic(run_flood, args=(tmp_path, case, scale), rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    print(json.dumps(result))
    assert result["rss_after_mib"] > 0
