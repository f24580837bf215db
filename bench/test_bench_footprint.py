"""The gateway's footprint on the 200-connector depot: resident memory over 30 minutes and CPU share.

The simulator serves the site in a process of its own (`hubgate.runtime.sim_process`); the
gateway runs in another (`hubgate.benchmarking.footprint.main`: `open_gateway` as `hubgate
run` builds it, importing nothing else), which samples its own memory and CPU. `steady` is
`depot-200-steady` (cars come and go, nothing else happens), `grid-limit-step` the demo's
scenario (the grid operator's limit steps to 30 % for ten minutes a minute in).
`extra_info` has the resident memory at the start, end and peak of the window (and the
anonymous part at the start and end: the process's own memory, not library pages), its growth
over the window's second half (MiB per hour), the CPU share (1.0: one core), the samples and
the machine's load; the benchmark's own time is the whole run. Targets (issue 22): at most
80 MiB and flat, at most 3 % of a core while steady.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import trio

from hubgate.runtime.sim_process import open_sim_process

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "examples/scenarios"
CHILD = "import sys; from hubgate.benchmarking.footprint import main; main(sys.argv[1:])"


async def _footprint(scenario: Path, settle_s: float, duration_s: float, sample_s: float) -> Any:
    async with open_sim_process(scenario) as served:
        with tempfile.TemporaryDirectory(prefix="hubgate-footprint-") as folder:
            site = Path(folder) / "site.json"
            site.write_text(served.site.model_dump_json())
            argv = [str(site), str(settle_s), str(duration_s), str(sample_s)]
            with trio.fail_after(duration_s + 900):
                done = await trio.run_process(
                    [sys.executable, "-c", CHILD, *argv], capture_stdout=True
                )
    return json.loads(done.stdout)


@pytest.mark.timeout(3600)
@pytest.mark.parametrize("case", ["steady", "grid-limit-step"])
@pytest.mark.parametrize("impl", ["hubgate"])
def test_footprint_depot_200(benchmark: Any, impl: str, case: str, smoke: bool) -> None:
    benchmark.group = "gateway-footprint-depot-200"
    scenario = SCENARIOS / ("depot-200-steady.toml" if case == "steady" else f"{case}.toml")
    settle_s, duration_s, sample_s = (5, 10, 2) if smoke else (30, 1800, 10)
    result: dict[str, Any] = {}

    def run() -> None:
        result.update(trio.run(_footprint, scenario, settle_s, duration_s, sample_s))

    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    summary = {k: v for k, v in result.items() if k != "samples"}
    print(f"\ngateway footprint, {case}: {json.dumps(summary)}")
    assert result["connectors"] == 200
    assert len(result["samples"]) == duration_s // sample_s
