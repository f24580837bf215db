"""Benchmarks (pytest-benchmark); `make bench` runs them and writes bench/results.json.

Convention: every comparison is one benchmark group per case, e.g.
`@pytest.mark.benchmark(group="modbus-fc3-roundtrip")`, parametrised by `impl`
naming `hubgate` and the peer (`pymodbus`, `ocpp-package`, `python-reference`,
`acnportal`, `prometheus-client`), measured in the same run. A case with no peer
has only the `hubgate` entry. The hooks below hold every benchmark to this.
`make test` runs each benchmark once with `--benchmark-disable` to keep it working.
Benchmarks may import the test suite's helpers (`tests.support`), e.g. the
allocation engine's synthetic sites and pure-Python reference.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

IMPL_NAME = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
"""`impl` values are lower-case words joined by hyphens (`ocpp-package`, not `ocpp_package`)."""


def convention_problems(items: list[pytest.Item]) -> list[str]:
    """What breaks the convention at collection: a benchmark without an `impl`
    parameter, an `impl` value that is not a hyphenated name, or a case without `hubgate`."""
    problems: list[str] = []
    impls: dict[str, set[str]] = defaultdict(set)
    for item in items:
        if "benchmark" not in getattr(item, "fixturenames", ()):
            continue
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "impl" not in params:
            problems.append(f"{item.nodeid}: no `impl` parameter")
            continue
        impl = params["impl"]
        if not IMPL_NAME.fullmatch(impl):
            problems.append(f"{item.nodeid}: impl {impl!r} is not a hyphenated lower-case name")
        impls[f"{item.path}::{item.originalname}"].add(impl)  # type: ignore[attr-defined]
    problems += [
        f"{case}: no `hubgate` entry" for case, seen in impls.items() if "hubgate" not in seen
    ]
    return problems


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    problems = convention_problems(items)
    if problems:
        raise pytest.UsageError("benchmark convention broken:\n" + "\n".join(problems))


@pytest.fixture(autouse=True)
def _one_group_per_case(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each benchmark: it named its case's group (by marker or `benchmark.group`)."""
    yield
    benchmark = request.node.funcargs.get("benchmark")
    if benchmark is not None and not benchmark.group:
        pytest.fail(f"{request.node.nodeid}: no benchmark group (the case's name)")


@pytest.fixture
def smoke(benchmark: BenchmarkFixture) -> bool:
    """True under `--benchmark-disable` (`make test`): each benchmark runs once to show it
    still works, so a case whose full size takes seconds may run at a smaller one."""
    return bool(benchmark.disabled)
