"""OCPP benchmarks: schema validation against the `ocpp` package, and a loopback load test.

The load test runs the server in a subprocess (so its memory and CPU are its own):
hubgate's listener (impl `hubgate`) or a central system built on the `ocpp` package
with `websockets` (impl `ocpp-package`, bench/ocpp_package_central.py). Stations are
simulated by load-generator processes of their own (one per 2,500 stations), with
trio-websocket clients: each boots, then sends MeterValues every 10 s, a
StatusNotification every 30 s and a Heartbeat every 60 s (random phases) for the
measurement window. Latency is measured at the clients, the server's CPU per message
from its own CPU time over the window.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
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
from trio_websocket import open_websocket_url

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

PERIODS_S = {"MeterValues": 10.0, "StatusNotification": 30.0, "Heartbeat": 60.0}
"""How often each station sends what, at the real rates."""
STATUS = {"connectorId": 1, "errorCode": "NoError", "status": "Charging"}
SERVERS = {
    "hubgate": [sys.executable, __file__, "serve"],
    "ocpp-package": [sys.executable, str(Path(__file__).with_name("ocpp_package_central.py"))],
}
"""How each impl's server process starts (the hubgate one is told the station count)."""
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


def _schedule(window_s: float, speedup: float) -> list[tuple[float, str]]:
    """When one station sends what within the window: periodic, with a random phase."""
    events = []
    for action, period in PERIODS_S.items():
        at = random.uniform(0, period / speedup)
        while at < window_s:
            events.append((at, action))
            at += period / speedup
    return sorted(events)


PAYLOADS: dict[str, dict[str, Any]] = {
    "MeterValues": METER_VALUES_16,
    "StatusNotification": STATUS,
    "Heartbeat": {},
}
"""What each station sends (a 1.6 MeterValues with 10 sampled values)."""


class _Generator:
    """One load-generator process's stations: all boot, then wait for `go`; `answered`
    is set once every station had its window's calls answered, `ended` when the parent
    has taken its figures (stations stay connected until then: one closing early could
    miss a ping of the server, and it costs the server too)."""

    def __init__(self, stations: int) -> None:
        self.booting = stations
        self.sending = stations
        self.booted = trio.Event()
        self.go = trio.Event()
        self.answered = trio.Event()
        self.ended = trio.Event()
        self.start = 0.0
        self.latencies: list[float] = []

    async def station(
        self, url: str, window_s: float, speedup: float, gate: trio.CapacityLimiter
    ) -> None:
        async with gate:
            ws_cm = open_websocket_url(url, subprotocols=["ocpp1.6"], connect_timeout=600)
            ws = await ws_cm.__aenter__()
        try:
            boot = {"chargePointVendor": "Load", "chargePointModel": "Sim"}
            await ws.send_message(json.dumps([2, "boot", "BootNotification", boot]))
            await ws.get_message()
            self.booting -= 1
            if self.booting == 0:
                self.booted.set()
            await self.go.wait()
            for n, (at, action) in enumerate(_schedule(window_s, speedup)):
                await trio.sleep_until(self.start + at)
                sent = time.perf_counter()
                await ws.send_message(json.dumps([2, str(n), action, PAYLOADS[action]]))
                reply = json.loads(await ws.get_message())
                self.latencies.append(time.perf_counter() - sent)
                assert reply[0] == 3, reply
            self.sending -= 1
            if self.sending == 0:
                self.answered.set()
            await self.ended.wait()
        finally:
            await ws_cm.__aexit__(None, None, None)


def _generate(port: int, first: int, count: int, window_s: float, speedup: float) -> None:
    """Subprocess entry: stations LOAD{first}.. LOAD{first + count - 1}. Prints `booted`
    once all are up, starts their schedules at `go` (a line on stdin), prints the
    latencies once all are answered, and closes them at the next line."""
    _raise_fd_limit()
    generator = _Generator(count)

    async def line() -> str:
        return await trio.to_thread.run_sync(sys.stdin.readline)

    async def main() -> None:
        gate = trio.CapacityLimiter(100)
        with trio.fail_after(window_s * speedup + 900):  # connecting + a lagging server
            async with trio.open_nursery() as nursery:
                for n in range(first, first + count):
                    url = f"ws://127.0.0.1:{port}/ocpp/LOAD{n}"
                    nursery.start_soon(generator.station, url, window_s, speedup, gate)
                await generator.booted.wait()
                print("booted", flush=True)
                await line()
                generator.start = trio.current_time()
                generator.go.set()
                await generator.answered.wait()
                print(json.dumps(generator.latencies), flush=True)
                await line()
                generator.ended.set()

    settle_gc()  # its pauses do not count against the server
    trio.run(main)


def run_load(
    stations: int,
    window_s: float,
    speedup: float = 1.0,
    on_steady: Callable[[int], object] | None = None,
    impl: str = "hubgate",
    per_generator: int = STATIONS_PER_GENERATOR,
) -> dict[str, float]:
    """Start `impl`'s server and the load generators (`per_generator` stations each),
    connect `stations`, run the window; return the figures. `on_steady` is called with
    the server's pid when the window starts (to profile it)."""
    _raise_fd_limit()
    with subprocess.Popen(
        [*SERVERS[impl], str(stations)], stdout=subprocess.PIPE, text=True
    ) as server:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        rss_idle, _ = _proc_stats(server.pid)
        began = time.perf_counter()
        share = math.ceil(stations / math.ceil(stations / per_generator))
        with contextlib.ExitStack() as stack:
            generators = []
            for first in range(0, stations, share):
                generator = subprocess.Popen(
                    [
                        *(sys.executable, __file__, "generate", str(port), str(first)),
                        *(str(min(share, stations - first)), str(window_s), str(speedup)),
                    ],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
                stack.enter_context(generator)
                stack.callback(generator.kill)
                generators.append(generator)
            try:
                figures = _measure(server.pid, generators, window_s, on_steady)
            finally:
                server.terminate()
    latencies = sorted(figures.pop("latencies"))  # type: ignore[arg-type]
    return {
        "stations": stations,
        "messages": len(latencies),
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "max_ms": latencies[-1] * 1000,
        "rss_idle_mib": rss_idle,
        "connect_all_s": figures.pop("booted_at") - began,
        "generators": len(generators),
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
    for generator in generators:
        assert generator.stdin is not None
        generator.stdin.write("go\n")
        generator.stdin.flush()
    time.sleep(window_s / 2)
    rss_mib = _proc_stats(server)[0]
    latencies: list[float] = []
    for generator in generators:  # until the last answer: a busy server may lag behind
        assert generator.stdout is not None
        answered = generator.stdout.readline()
        if not answered:
            raise RuntimeError("a load generator failed in the window (its stderr says why)")
        latencies += json.loads(answered)
    elapsed = time.perf_counter() - steady
    cpu_s = _proc_stats(server)[1] - cpu_before
    # The simulated stations' processes: near 1.0 each means latency is theirs too.
    client_s = sum(_proc_stats(g.pid)[1] for g in generators) - own_before
    for generator in generators:
        assert generator.stdin is not None
        generator.stdin.write("end\n")
        generator.stdin.flush()
    return {
        "latencies": latencies,
        "booted_at": booted_at,
        "rss_mib": rss_mib,
        "cpu_share": cpu_s / elapsed,
        "cpu_us_per_message": cpu_s / max(len(latencies), 1) * 1e6,
        "client_cpu_share": client_s / elapsed / len(generators),
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
    else:
        _generate(*map(int, sys.argv[2:5]), *map(float, sys.argv[5:7]))  # type: ignore[call-arg]
