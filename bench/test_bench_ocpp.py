"""OCPP benchmarks: schema validation against the `ocpp` package, and a loopback load test.

The load test runs the server in a subprocess (so its memory and CPU are its own):
hubgate's listener (impl `hubgate`) or a central system built on the `ocpp` package
with `websockets` (impl `ocpp-package`, bench/ocpp_package_central.py). It simulates
stations from this process with trio-websocket clients: each boots, then sends
MeterValues every 10 s, a StatusNotification every 30 s and a Heartbeat every 60 s
(random phases) for the measurement window. Latency is measured at the clients, the
server's CPU per message from its own CPU time over the window.
"""

from __future__ import annotations

import json
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

from hubgate.benchmarking.ocpp_cost import METER_VALUES as METER_VALUES_16
from hubgate.config.services import OcppServer
from hubgate.ocpp.registry import Admission, StationRegistry
from hubgate.ocpp.server import OcppListener
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
    "hubgate": [sys.executable, __file__],
    "ocpp-package": [sys.executable, str(Path(__file__).with_name("ocpp_package_central.py"))],
}
"""How each impl's server process starts (the hubgate one is told the station count)."""


def _serve(stations: int) -> None:
    """Subprocess entry: a listener admitting `stations` 1.6 identities; prints its port."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
    registry = StationRegistry(
        Admission(f"LOAD{n}", f"load-{n}", (OcppVersion.V16,)) for n in range(stations)
    )
    listener = OcppListener(OcppServer(port=0), registry)
    settle_gc()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            port = await nursery.start(listener.serve)
            print(port, flush=True)

    trio.run(main)


def _proc_stats(pid: int) -> tuple[float, float]:
    """(resident MiB, CPU seconds) of a process."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return rss_kib / 1024, ticks / 100


class _Barrier:
    """Releases every station once all have booted (the steady-state window starts then);
    `answered` is set once every station had its window's calls answered, `ended` when the
    figures are taken: stations stay connected until then (one closing early could miss a
    ping of the server, and it costs the server too)."""

    def __init__(self, parties: int) -> None:
        self.waiting = parties
        self.sending = parties
        self.released = trio.Event()
        self.answered = trio.Event()
        self.ended = trio.Event()
        self.at = 0.0

    def done(self) -> None:
        """One station's calls were all answered."""
        self.sending -= 1
        if self.sending == 0:
            self.answered.set()

    async def arrive(self) -> float:
        self.waiting -= 1
        if self.waiting == 0:
            self.at = trio.current_time()
            self.released.set()
        await self.released.wait()
        return self.at


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


async def _station(
    url: str,
    window_s: float,
    speedup: float,
    connect_gate: trio.CapacityLimiter,
    barrier: _Barrier,
    latencies: list[float],
) -> None:
    async with connect_gate:
        ws_cm = open_websocket_url(url, subprotocols=["ocpp1.6"], connect_timeout=60)
        ws = await ws_cm.__aenter__()
    try:
        boot = {"chargePointVendor": "Load", "chargePointModel": "Sim"}
        await ws.send_message(json.dumps([2, "boot", "BootNotification", boot]))
        await ws.get_message()
        start = await barrier.arrive()
        for n, (at, action) in enumerate(_schedule(window_s, speedup)):
            await trio.sleep_until(start + at)
            payload = PAYLOADS[action]
            sent = time.perf_counter()
            await ws.send_message(json.dumps([2, str(n), action, payload]))
            reply = json.loads(await ws.get_message())
            latencies.append(time.perf_counter() - sent)
            assert reply[0] == 3, reply
        barrier.done()
        await barrier.ended.wait()
    finally:
        await ws_cm.__aexit__(None, None, None)


def run_load(
    stations: int,
    window_s: float,
    speedup: float = 1.0,
    on_steady: Callable[[int], object] | None = None,
    impl: str = "hubgate",
) -> dict[str, float]:
    """Start `impl`'s server, connect `stations`, run the window; return the figures.
    `on_steady` is called with the server's pid when the window starts (to profile it)."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
    with subprocess.Popen(
        [*SERVERS[impl], str(stations)], stdout=subprocess.PIPE, text=True
    ) as server:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        rss_idle, _ = _proc_stats(server.pid)
        latencies: list[float] = []
        figures: dict[str, float] = {}

        async def main() -> None:
            gate = trio.CapacityLimiter(100)
            barrier = _Barrier(stations)
            began = time.perf_counter()
            with trio.fail_after(window_s * speedup + 120):  # a lagging server catches up
                async with trio.open_nursery() as nursery:
                    for n in range(stations):
                        url = f"ws://127.0.0.1:{port}/ocpp/LOAD{n}"
                        nursery.start_soon(
                            _station, url, window_s, speedup, gate, barrier, latencies
                        )
                    await barrier.released.wait()
                    figures["connect_all_s"] = time.perf_counter() - began
                    if on_steady is not None:
                        on_steady(server.pid)
                    steady, cpu_before = time.perf_counter(), _proc_stats(server.pid)[1]
                    own_cpu_before = time.process_time()
                    await trio.sleep(window_s / 2)
                    figures["rss_mib"] = _proc_stats(server.pid)[0]
                    # Until the last answer: on a busy machine the server may lag behind.
                    await barrier.answered.wait()
                    elapsed = time.perf_counter() - steady
                    cpu_s = _proc_stats(server.pid)[1] - cpu_before
                    figures["cpu_share"] = cpu_s / elapsed
                    figures["cpu_us_per_message"] = cpu_s / max(len(latencies), 1) * 1e6
                    # The simulated stations' process: near 1.0 means latency is theirs too.
                    figures["client_cpu_share"] = (time.process_time() - own_cpu_before) / elapsed
                    barrier.ended.set()

        settle_gc()  # the same for the load generator, so that its pauses do not count
        try:
            trio.run(main)
        finally:
            server.terminate()
    latencies.sort()
    return {
        "stations": stations,
        "messages": len(latencies),
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "max_ms": latencies[-1] * 1000,
        "rss_idle_mib": rss_idle,
        **figures,
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


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
