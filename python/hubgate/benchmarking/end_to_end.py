"""The gateway's whole control cycle, measured against a simulated site in its own process.

`hubgate sim SCENARIO --serve` (a child process, `hubgate.runtime.sim_process`) serves the
site's Modbus devices on loopback and dials this process's OCPP listener with its stations;
this process runs the gateway (`open_gateway`: the control loop, OCPP listener, API)
against it at the site's cycle. Once every station is connected, and after a settling time,
the measurement window counts cycles, this process's CPU time (every thread: sensing over real
sockets, OCPP traffic, allocation, dispatch, records) and each cycle's latency from the start
of sensing to the last command sent.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import trio

from hubgate.benchmarking.footprint import rss_mib
from hubgate.benchmarking.gateway_ready import ready
from hubgate.runtime.gateway import Gateway, open_gateway
from hubgate.runtime.gc_tuning import settle_gc
from hubgate.runtime.sim_process import open_sim_process

READY_TIMEOUT_S = 120.0
"""How long every station may take to connect."""


@dataclass(frozen=True)
class CycleRun:
    """One measured window of the gateway's control loop against the simulated site."""

    scenario: str
    connectors: int
    modbus_connectors: int
    ocpp_connectors: int
    devices: int
    """Devices the loop reads or hears from (chargers, meters, the grid operator's box)."""
    cycle_s: float
    cycles: int
    window_s: float
    cpu_s: float
    """This process's CPU time in the window (all threads)."""
    cycle_cpu_ms: tuple[float, ...]
    """This process's CPU time from one cycle's end to the next's, each cycle."""
    latency_p50_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    ocpp_stations_online: int
    devices_reachable: int
    load_before: float
    load_after: float
    """The machine's 1-minute load average at the window's start and end."""
    rss_mib: float
    """This process's resident memory at the window's end (MiB): the gateway's, with the
    measurement's own small share."""

    @property
    def cpu_per_cycle_s(self) -> float:
        """Gateway CPU per control cycle (everything it did in the window, per cycle)."""
        return self.cpu_s / self.cycles

    @property
    def cpu_per_connector_s(self) -> float:
        """Gateway CPU per cycle and connector."""
        return self.cpu_per_cycle_s / self.connectors

    @property
    def kept_cycle(self) -> bool:
        """Whether the loop kept its cycle: the window lasted at most 10 % more than its
        cycles and the slowest cycle's latency stayed within one cycle."""
        return (
            self.window_s <= 1.1 * self.cycles * self.cycle_s
            and self.latency_max_ms <= self.cycle_s * 1e3
        )

    def as_json(self) -> dict[str, object]:
        """The fields, the derived figures, without the per-cycle list."""
        fields = asdict(self)
        del fields["cycle_cpu_ms"]
        return {
            **fields,
            "cpu_per_cycle_ms": self.cpu_per_cycle_s * 1e3,
            "cpu_per_cycle_median_ms": statistics.median(self.cycle_cpu_ms),
            "cpu_per_connector_us": self.cpu_per_connector_s * 1e6,
            "kept_cycle": self.kept_cycle,
        }


def measure_cycle(
    scenario: Path,
    *,
    settle_s: float,
    cycles: int,
    cycle_s: float | None = None,
    on_window: Callable[[], object] | None = None,
    device_workers: int = 0,
) -> CycleRun:
    """Serve `scenario`'s site from a child simulator, control it from this process and
    measure `cycles` cycles after `settle_s` of settling (see the module docstring);
    `cycle_s`: another control cycle than the site's; `on_window`: called as the window
    starts (e.g. to start a profiler); `device_workers`: the simulator's Modbus devices
    served from that many processes of its own (`hubgate sim --device-workers`)."""
    return trio.run(_run, scenario, settle_s, cycles, cycle_s, on_window, device_workers)


async def _run(
    scenario: Path,
    settle_s: float,
    cycles: int,
    cycle_s: float | None,
    on_window: Callable[[], object] | None,
    device_workers: int,
) -> CycleRun:
    async with open_sim_process(scenario, device_workers) as served:
        site = served.site
        if cycle_s is not None:
            control = site.control.model_copy(update={"cycle_s": cycle_s})
            site = site.model_copy(update={"control": control})
        # A loop that overruns a short cycle still gets its cycles counted (up to 1 s each).
        limit_s = READY_TIMEOUT_S + settle_s + cycles * max(site.control.cycle_s * 3, 1.0)
        with trio.fail_after(limit_s):
            async with open_gateway(site) as gateway:
                settle_gc()  # as `hubgate run` does once its services run
                await ready(gateway, READY_TIMEOUT_S)
                await trio.sleep(settle_s)
                if on_window is not None:
                    on_window()
                run = await _window(gateway, scenario.stem, cycles)
                await gateway.shutdown()
    return run


async def _window(gateway: Gateway, name: str, cycles: int) -> CycleRun:
    loop = gateway.loop
    await loop.cycle_ready.wait()
    latencies: list[float] = []
    load_before = os.getloadavg()[0]
    began, cpu_began = time.monotonic(), time.process_time()
    cycle_cpu_ms, cpu_last = [], cpu_began
    while len(latencies) < cycles:  # (the loop keeps only its last cycle's latency)
        await loop.cycle_ready.wait()
        assert loop.latency_s is not None, "a cycle that is ready measured its latency"
        latencies.append(loop.latency_s)
        cpu_now = time.process_time()
        cycle_cpu_ms.append((cpu_now - cpu_last) * 1e3)
        cpu_last = cpu_now
    cpu_s, window_s = cpu_last - cpu_began, time.monotonic() - began
    latencies.sort()
    latest = loop.hub.latest
    model = loop.model
    ocpp = sum(1 for info in model.connectors if info.key[0] in _ocpp_ids(gateway))
    return CycleRun(
        scenario=name,
        connectors=len(model.connectors),
        modbus_connectors=len(model.connectors) - ocpp,
        ocpp_connectors=ocpp,
        devices=0 if latest is None else len(latest.devices),
        cycle_s=gateway.site.control.cycle_s,
        cycles=len(latencies),
        window_s=window_s,
        cpu_s=cpu_s,
        cycle_cpu_ms=tuple(cycle_cpu_ms),
        latency_p50_ms=statistics.median(latencies) * 1e3,
        latency_p99_ms=latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] * 1e3,
        latency_max_ms=latencies[-1] * 1e3,
        ocpp_stations_online=sum(1 for s in gateway.registry if s.session is not None),
        devices_reachable=0 if latest is None else sum(1 for r in latest.devices if r.reachable),
        load_before=load_before,
        load_after=os.getloadavg()[0],
        rss_mib=rss_mib(),
    )


def _ocpp_ids(gateway: Gateway) -> set[str]:
    return {c.id for c in gateway.site.chargers if c.ocpp is not None}
