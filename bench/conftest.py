"""Benchmarks (pytest-benchmark); `make bench` runs them and writes bench/results.json.

Convention: every comparison is one benchmark group per case, e.g.
`@pytest.mark.benchmark(group="modbus-fc3-roundtrip")`, parametrised by `impl`
naming `hubgate` and the peer (`pymodbus`, `ocpp-package`, `python-reference`),
measured in the same run. A case with no peer has only the `hubgate` entry.
`make test` runs each benchmark once with `--benchmark-disable` to keep it working.
Benchmarks may import the test suite's helpers (`tests/` is on the path), e.g. the
allocation engine's synthetic sites and pure-Python reference.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
