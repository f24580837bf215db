"""The control cycle on the 500-connector depot against the simulator on loopback.

`hubgate.benchmarking.end_to_end.measure_cycle` (as `hubgate bench` does): the simulator
serves the site in its own process (`hubgate sim ... --serve`, paced at 1x: 125 Modbus TCP
chargers with 250 connectors, 125 OCPP stations with 250 connectors dialling the gateway,
meters and the grid operator's box); the gateway runs in this process at the site's 1 s
cycle and at 100 ms. At 100 ms the simulator serves the Modbus devices from
`DEVICE_WORKERS` processes of its own (`hubgate sim --device-workers`): one process
cannot answer 273 devices ten times a second. `extra_info` has the latency from the start of sensing to the last
command sent (p50, p99, max in ms), the gateway's CPU per cycle (`cpu_per_cycle_ms`: this
process's CPU time over the window, per cycle; `cpu_per_cycle_median_ms`), whether the
loop kept its cycle, and the machine's load; the benchmark's own time is the whole run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hubgate.benchmarking.end_to_end import measure_cycle

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "examples/scenarios/depot-500.toml"
DEVICE_WORKERS = 2


@pytest.mark.timeout(900)
@pytest.mark.parametrize("cycle_s", [1.0, 0.1])
@pytest.mark.parametrize("impl", ["hubgate"])
def test_cycle_500_connectors(benchmark: Any, impl: str, cycle_s: float, smoke: bool) -> None:
    benchmark.group = "control-cycle-500-connectors" + ("-100ms" if cycle_s < 1 else "")
    cycles, settle_s = (3, 5.0) if smoke else (120 if cycle_s >= 1 else 150, 20.0)
    result: dict[str, Any] = {}

    def run() -> None:
        result.update(
            measure_cycle(
                SCENARIO,
                settle_s=settle_s,
                cycles=cycles,
                cycle_s=cycle_s,
                device_workers=DEVICE_WORKERS if cycle_s < 1 else 0,
            ).as_json()
        )

    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    print(f"\ncontrol cycle, 500 connectors every {cycle_s} s: {json.dumps(result)}")
    assert result["cycles"] >= cycles
    assert result["connectors"] == 500
