"""Benchmarks (pytest-benchmark); `make bench` runs them and writes bench/results.json.

Convention: every comparison is one benchmark group per case, e.g.
`@pytest.mark.benchmark(group="modbus-fc3-roundtrip")`, parametrised by `impl`
naming `hubgate` and the peer (`pymodbus`, `ocpp-package`, `python-reference`),
measured in the same run. A case with no peer has only the `hubgate` entry.
`make test` runs each benchmark once with `--benchmark-disable` to keep it working.
"""
