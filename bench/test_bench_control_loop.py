"""Control-cycle latency on the 500-connector depot against the simulator on loopback.

The simulator runs in its own process (`hubgate sim ... --serve`, paced at 1x):
125 Modbus TCP chargers (250 connectors), 125 OCPP stations (250 connectors)
dialling the gateway, meters and the grid operator's box. The gateway (this
process) cycles at 1 s; each cycle's latency runs from the start of sensing to
the last command sent (`ControlLoop.latencies_s`). `extra_info` has p50, p99,
max (ms), the cycle count and the site's size; the benchmark's own time is the
whole measured run.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import trio

from hubgate.runtime.demo import LOOPBACK, free_port, rewired
from hubgate.runtime.gateway import open_gateway
from hubgate.runtime.gc_tuning import settle_gc
from hubgate.sim.scenario_loader import load_scenario

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "examples/scenarios/depot-500.toml"
HUBGATE = str(Path(sys.executable).parent / "hubgate")


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def _measure(listing: Path, ocpp_port: int, cycles: int, warm_up_s: float) -> dict[str, Any]:
    loaded = load_scenario(SCENARIO)
    for _ in range(600):
        if listing.exists() and listing.read_text():
            break
        await trio.sleep(0.2)
    data = json.loads(listing.read_text())
    ports = {box["id"]: box["port"] for box in data["modbus"]}
    site = rewired(loaded.site, ports, ocpp_port, 0)
    with trio.fail_after(warm_up_s + cycles * 2 + 120):
        async with open_gateway(site) as gateway:
            settle_gc()
            await trio.sleep(warm_up_s)
            loop = gateway.loop
            loop.latencies_s.clear()
            while len(loop.latencies_s) < cycles:
                await loop.cycle_ready.wait()
            latencies = list(loop.latencies_s)
            online = sum(1 for s in gateway.registry if s.session is not None)
            reachable = (
                sum(1 for r in loop.hub.latest.devices if r.reachable) if loop.hub.latest else 0
            )
            await gateway.shutdown()
    return {
        "cycles": len(latencies),
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": _percentile(latencies, 0.99) * 1000,
        "max_ms": max(latencies) * 1000,
        "connectors": len(loop.model.connectors),
        "ocpp_stations_online": online,
        "devices_reachable": reachable,
    }


@pytest.mark.timeout(600)
@pytest.mark.benchmark(group="control-cycle-500-connectors")
@pytest.mark.parametrize("impl", ["hubgate"])
def test_cycle_latency_500_connectors(benchmark: Any, impl: str, smoke: bool) -> None:
    cycles, warm_up_s = (3, 5.0) if smoke else (120, 20.0)
    ocpp_port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        listing = Path(folder) / "listing.json"
        sim = subprocess.Popen(
            [
                HUBGATE,
                "sim",
                str(SCENARIO),
                "--serve",
                "--ports",
                "auto",
                "--listing",
                str(listing),
                "--csms",
                f"ws://{LOOPBACK}:{ocpp_port}/ocpp",
                "--meter-values",
                "10",
                "--status-every",
                "3600",
                "--duration",
                "3600",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=ROOT,
        )
        try:
            result: dict[str, Any] = {}

            def run() -> None:
                result.update(trio.run(_measure, listing, ocpp_port, cycles, warm_up_s))

            benchmark.pedantic(run, rounds=1, iterations=1)
        finally:
            sim.terminate()
            sim.wait(30)
    benchmark.extra_info.update(result)
    print(f"\ncontrol cycle, sensing to last command: {result}")
    assert result["cycles"] >= cycles
    assert result["connectors"] == 500
