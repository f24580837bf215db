"""OCPP benchmarks: schema validation against the `ocpp` package, and a loopback load test.

The load test runs the server in a subprocess (so its memory and CPU are its own):
hubgate's listener (impl `hubgate`) or a central system built on the `ocpp` package
with `websockets` (impl `ocpp-package`, bench/ocpp_package_central.py). Stations are
simulated by load-generator processes of their own (one per 2,500 stations,
bench/ocpp_load_stations.py: plain sockets, one `epoll` set each): each boots, then sends MeterValues every 10 s, a
StatusNotification every 30 s and a Heartbeat every 60 s (random phases) for the
measurement window. Latency is measured at the clients, the server's CPU per message
from its own CPU time over the window. Each process's wait for a CPU over the window
(`/proc/PID/task/*/schedstat`: runnable, not running) is recorded beside it: on a shared
machine a starved server or generator is the latency, not the server's work.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import fastjsonschema
import pytest
import trio
from ocpp.messages import Call, _validate_payload

from hubgate.benchmarking.footprint import rss_mib
from hubgate.benchmarking.ocpp_cost import METER_VALUES as METER_VALUES_16
from hubgate.config.services import OcppServer
from hubgate.ocpp.registry import Admission, StationRegistry
from hubgate.ocpp.server import ListenerLimits, OcppListener
from hubgate.ocpp.validation import Direction, validate
from hubgate.ocpp.versions import OcppVersion
from hubgate.runtime.gc_tuning import settle_gc


def _validate_with_ocpp_package() -> None:
    _validate_payload(Call("1", "MeterValues", METER_VALUES_16), "1.6")


def _validate_with_hubgate() -> None:
    validate(OcppVersion.V16, "MeterValues", Direction.REQUEST, METER_VALUES_16)


def _fastjsonschema_validator() -> Callable[[], object]:
    schema_file = resources.files("ocpp") / "v16" / "schemas" / "MeterValues.json"
    check = fastjsonschema.compile(json.loads(schema_file.read_text(encoding="utf-8-sig")))
    return lambda: check(METER_VALUES_16)


@pytest.mark.benchmark(group="ocpp-validate-metervalues")
@pytest.mark.parametrize("impl", ["hubgate", "ocpp-package", "fastjsonschema"])
def test_validate_meter_values(benchmark: Any, impl: str) -> None:
    """A 1.6 MeterValues with 10 sampled values; `fastjsonschema` is the rejected alternative."""
    runs = {"hubgate": _validate_with_hubgate, "ocpp-package": _validate_with_ocpp_package}
    run = runs[impl] if impl in runs else _fastjsonschema_validator()
    run()  # warm: compile or load the schema once
    benchmark(run)


# --- loopback load test ---------------------------------------------------------------------

SERVERS = {
    "hubgate": [sys.executable, __file__, "serve"],
    "ocpp-package": [sys.executable, str(Path(__file__).with_name("ocpp_package_central.py"))],
}
"""How each impl's server process starts (the hubgate one is told the station count)."""
GENERATOR = Path(__file__).with_name("ocpp_load_stations.py")
"""A load-generator process: plain sockets and one `epoll` set for its stations."""
STATIONS_PER_GENERATOR = 2500
"""Stations one load-generator process simulates (its CPU stays well under a core)."""


def _raise_fd_limit() -> None:
    """The soft limit on open files up to the hard one: one descriptor per station."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _serve(stations: int) -> None:
    """Subprocess entry: a listener admitting `stations` 1.6 identities; prints its port."""
    _raise_fd_limit()
    registry = StationRegistry(
        Admission(f"LOAD{n}", f"load-{n}", (OcppVersion.V16,)) for n in range(stations)
    )
    # Stations connect over minutes before the window (10,000 at load 15: 6 minutes) and
    # wait quietly for it; pinging them is not the load measured (in the window every
    # station sends more often than the 30 s ping interval, which pings only quiet ones).
    limits = ListenerLimits(ping_interval_s=3600.0)
    listener = OcppListener(OcppServer(port=0), registry, limits=limits)
    settle_gc()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            port = await nursery.start(listener.serve)
            print(port, flush=True)

    trio.run(main)


def _proc_stats(pid: int) -> tuple[float, float]:
    """(resident MiB, CPU seconds) of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return rss_mib(pid), ticks / 100


def _sched_s(pid: int) -> tuple[float, float]:
    """(seconds on a CPU, seconds runnable but waiting for one) of all a process's threads."""
    run = wait = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        fields = (task / "schedstat").read_text().split()
        run, wait = run + int(fields[0]), wait + int(fields[1])
    return run / 1e9, wait / 1e9


def _own_cpu_group(pid: int, nice: int) -> None:
    """Give a process started in a session of its own the autogroup nice `nice`: with
    the kernel's autogroups (`/proc/sys/kernel/sched_autogroup_enabled`), CPU is shared
    between sessions first, so a process's own nice only orders it within its session
    (docs/performance.md)."""
    Path(f"/proc/{pid}/autogroup").write_text(str(nice))


def run_load(
    stations: int,
    window_s: float,
    speedup: float = 1.0,
    on_steady: Callable[[int], object] | None = None,
    impl: str = "hubgate",
    per_generator: int = STATIONS_PER_GENERATOR,
    group_nice: int | None = None,
) -> dict[str, float]:
    """Start `impl`'s server and the load generators (`per_generator` stations each),
    connect `stations`, run the window; return the figures. `on_steady` is called with
    the server's pid when the window starts (to profile it). Each process runs in a
    session (autogroup) of its own, as a service does; `group_nice` sets its autogroup's
    nice (root for < 0)."""
    _raise_fd_limit()
    with subprocess.Popen(
        [*SERVERS[impl], str(stations)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as server:
        assert server.stdout is not None
        if group_nice is not None:
            _own_cpu_group(server.pid, group_nice)
        port = int(server.stdout.readline())
        rss_idle, _ = _proc_stats(server.pid)
        load_before = os.getloadavg()[0]
        began = time.perf_counter()
        share = math.ceil(stations / math.ceil(stations / per_generator))
        with contextlib.ExitStack() as stack:
            generators = []
            for first in range(0, stations, share):
                generator = subprocess.Popen(
                    [
                        *(sys.executable, str(GENERATOR), str(port), str(first)),
                        *(str(min(share, stations - first)), str(window_s), str(speedup)),
                    ],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    start_new_session=True,
                )
                if group_nice is not None:
                    _own_cpu_group(generator.pid, group_nice)
                stack.enter_context(generator)
                stack.callback(generator.kill)
                generators.append(generator)
            try:
                figures = _measure(server.pid, generators, window_s, on_steady)
            finally:
                server.terminate()
    latencies = sorted(figures.pop("latencies"))  # type: ignore[arg-type]
    at_socket = sorted(figures.pop("at_socket"))  # type: ignore[arg-type]
    return {
        "stations": stations,
        "messages": len(latencies),
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "max_ms": latencies[-1] * 1000,
        # The answers' arrival at the stations' sockets: without the generators' own waits.
        "at_socket_p50_ms": at_socket[len(at_socket) // 2] * 1000,
        "at_socket_p99_ms": at_socket[int(len(at_socket) * 0.99)] * 1000,
        "at_socket_max_ms": at_socket[-1] * 1000,
        "rss_idle_mib": rss_idle,
        "connect_all_s": figures.pop("booted_at") - began,
        "generators": len(generators),
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        **figures,
    }


def _measure(
    server: int,
    generators: list[subprocess.Popen[str]],
    window_s: float,
    on_steady: Callable[[int], object] | None,
) -> dict[str, Any]:
    """The window, from `go` to the last answer: the server's CPU and RSS, the
    generators' CPU share and every latency."""
    for generator in generators:
        assert generator.stdout is not None
        if generator.stdout.readline().strip() != "booted":
            raise RuntimeError("a load generator failed while connecting (its stderr says why)")
    booted_at = time.perf_counter()
    if on_steady is not None:
        on_steady(server)
    steady, cpu_before = time.perf_counter(), _proc_stats(server)[1]
    own_before = sum(_proc_stats(g.pid)[1] for g in generators)
    server_sched = _sched_s(server)
    clients_sched = [_sched_s(g.pid) for g in generators]
    for generator in generators:
        assert generator.stdin is not None
        generator.stdin.write("go\n")
        generator.stdin.flush()
    time.sleep(window_s / 2)
    rss_mib = _proc_stats(server)[0]
    latencies: list[float] = []
    at_socket: list[float] = []
    for generator in generators:  # until the last answer: a busy server may lag behind
        assert generator.stdout is not None
        answered = generator.stdout.readline()
        if not answered:
            raise RuntimeError("a load generator failed in the window (its stderr says why)")
        measured = json.loads(answered)
        latencies += measured["read"]
        at_socket += measured["at_socket"]
    elapsed = time.perf_counter() - steady
    cpu_s = _proc_stats(server)[1] - cpu_before
    # The simulated stations' processes: near 1.0 each means latency is theirs too.
    client_s = sum(_proc_stats(g.pid)[1] for g in generators) - own_before
    server_wait_s = _sched_s(server)[1] - server_sched[1]
    client_wait_s = sum(
        _sched_s(g.pid)[1] - w for g, (_, w) in zip(generators, clients_sched, strict=True)
    )
    for generator in generators:
        assert generator.stdin is not None
        generator.stdin.write("end\n")
        generator.stdin.flush()
    return {
        "latencies": latencies,
        "at_socket": at_socket,
        "booted_at": booted_at,
        "rss_mib": rss_mib,
        "cpu_share": cpu_s / elapsed,
        "cpu_us_per_message": cpu_s / max(len(latencies), 1) * 1e6,
        "client_cpu_share": client_s / elapsed / len(generators),
        # Shares of the window each process was runnable but had no CPU.
        "server_wait_share": server_wait_s / elapsed,
        "client_wait_share": client_wait_s / elapsed / len(generators),
    }


@pytest.mark.parametrize("speedup", [1, 10])
@pytest.mark.parametrize("impl", ["hubgate", "ocpp-package"])
def test_loopback_load(benchmark: Any, impl: str, speedup: int, smoke: bool) -> None:
    """1,000 stations at the real rates (MeterValues 10 s, StatusNotification 30 s,
    Heartbeat 60 s), then 10x faster; `extra_info.cpu_us_per_message` is the comparison."""
    benchmark.group = "ocpp-load-1000-stations" + ("" if speedup == 1 else f"-{speedup}x")
    # Smoke run under --benchmark-disable: 20 stations, one MeterValues period each.
    load = (20, 1.0, 10) if smoke else (1000, 20.0, speedup)
    result = benchmark.pedantic(run_load, args=load, kwargs={"impl": impl}, rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    print(json.dumps(result))
    assert result["messages"] >= load[0]


@pytest.mark.benchmark(group="ocpp-load-10000-stations")
@pytest.mark.parametrize("impl", ["hubgate"])
def test_ten_thousand_stations(benchmark: Any, impl: str, smoke: bool) -> None:
    """10,000 stations at the real rates on one server process, from four load-generator
    processes (the ocpp-package server needs more than the machine's cores for this
    load, see docs/performance.md). Targets: p99 <= 100 ms, RSS <= 1 GiB."""
    # Smoke run: 40 stations from two generator processes, one MeterValues period each.
    load = (40, 1.0, 10) if smoke else (10_000, 20.0, 1)
    kwargs = {"impl": impl, "per_generator": 20 if smoke else STATIONS_PER_GENERATOR}
    result = benchmark.pedantic(run_load, args=load, kwargs=kwargs, rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    print(json.dumps(result))
    assert result["messages"] >= load[0]


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        _serve(int(sys.argv[2]))
    elif sys.argv[1] == "run":  # STATIONS WINDOW_S [GROUP_NICE]: one load run, by hand
        nice = int(sys.argv[4]) if len(sys.argv) > 4 else None
        print(json.dumps(run_load(int(sys.argv[2]), float(sys.argv[3]), group_nice=nice)))
