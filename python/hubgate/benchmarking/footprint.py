"""The gateway's footprint: its resident memory over time and its CPU share.

This process runs the gateway (`open_gateway`, as `hubgate run` builds it) for a site
served elsewhere (`hubgate sim SCENARIO --serve` in a process of its own:
`hubgate.runtime.sim_process`, the site rewired to it) and, once every station is connected
and the start has settled, samples its own resident set size (`VmRSS`) and CPU time every
`sample_s` for `duration_s`. Run it in a process of its own (`main`) that imports nothing
else, so that the memory is the gateway's alone.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import trio

from hubgate.benchmarking.gateway_ready import ready
from hubgate.config.model import SiteConfig
from hubgate.runtime.gateway import open_gateway
from hubgate.runtime.gc_tuning import settle_gc

READY_TIMEOUT_S = 300.0
"""How long every station may take to connect."""


@dataclass(frozen=True)
class Sample:
    """One sample: seconds into the window, resident memory (and of it the process's own,
    anonymous memory: Python objects and native heaps; the rest is mapped library pages),
    CPU share since the last one."""

    at_s: float
    rss_mib: float
    anon_mib: float
    cpu_share: float


@dataclass(frozen=True)
class Footprint:
    """The gateway's memory and CPU over one window against the simulated site."""

    site: str
    connectors: int
    cycle_s: float
    duration_s: float
    samples: tuple[Sample, ...]
    cpu_s: float
    """This process's CPU time over the window (all threads)."""
    load_before: float
    load_after: float

    @property
    def cpu_share(self) -> float:
        """The gateway's CPU time over the window's wall time (1.0: one core)."""
        return self.cpu_s / self.duration_s

    @property
    def rss_mib(self) -> tuple[float, float, float]:
        """Resident memory at the window's start, its end and its peak (MiB)."""
        rss = [s.rss_mib for s in self.samples]
        return rss[0], rss[-1], max(rss)

    @property
    def rss_growth_mib_per_h(self) -> float:
        """The least-squares slope of the resident memory over the second half of the window
        (the first holds what a start still allocates), in MiB per hour."""
        late = self.samples[len(self.samples) // 2 :]
        if len(late) < 2:
            return 0.0
        mean_t = sum(s.at_s for s in late) / len(late)
        mean_r = sum(s.rss_mib for s in late) / len(late)
        spread = sum((s.at_s - mean_t) ** 2 for s in late)
        slope = sum((s.at_s - mean_t) * (s.rss_mib - mean_r) for s in late) / spread
        return slope * 3600

    def as_json(self) -> dict[str, object]:
        """The fields and the derived figures."""
        start, end, peak = self.rss_mib
        return {
            **asdict(self),
            "cpu_share": self.cpu_share,
            "rss_start_mib": start,
            "rss_end_mib": end,
            "rss_peak_mib": peak,
            "anon_start_mib": self.samples[0].anon_mib,
            "anon_end_mib": self.samples[-1].anon_mib,
            "rss_growth_mib_per_h": self.rss_growth_mib_per_h,
        }


def measure_footprint(
    site: SiteConfig, *, settle_s: float, duration_s: float, sample_s: float
) -> Footprint:
    """Control `site` (served elsewhere) from this process and sample this process's memory
    and CPU every `sample_s` for `duration_s` after `settle_s`."""
    return trio.run(_run, site, settle_s, duration_s, sample_s)


async def _run(site: SiteConfig, settle_s: float, duration_s: float, sample_s: float) -> Footprint:
    with trio.fail_after(READY_TIMEOUT_S + settle_s + 2 * duration_s):
        async with open_gateway(site) as gateway:
            settle_gc()  # as `hubgate run` does once its services run
            await ready(gateway, READY_TIMEOUT_S)
            await trio.sleep(settle_s)
            load_before = os.getloadavg()[0]
            began, cpu_began = trio.current_time(), time.process_time()
            samples, last_at, cpu_last = [], began, cpu_began
            for k in range(1, max(1, round(duration_s / sample_s)) + 1):
                await trio.sleep_until(began + k * sample_s)
                now, cpu_now = trio.current_time(), time.process_time()
                share = (cpu_now - cpu_last) / (now - last_at)
                memory = _status_mib("VmRSS", "RssAnon")
                samples.append(Sample(now - began, memory["VmRSS"], memory["RssAnon"], share))
                last_at, cpu_last = now, cpu_now
            await gateway.shutdown()
    return Footprint(
        site=site.site.name,
        connectors=len(gateway.loop.model.connectors),
        cycle_s=site.control.cycle_s,
        duration_s=last_at - began,
        samples=tuple(samples),
        cpu_s=cpu_last - cpu_began,
        load_before=load_before,
        load_after=os.getloadavg()[0],
    )


def rss_mib(pid: int | None = None) -> float:
    """The resident set size (MiB) of process `pid` (default: this one)."""
    return _status_mib("VmRSS", pid=pid)["VmRSS"]


def _status_mib(*fields: str, pid: int | None = None) -> dict[str, float]:
    """Memory fields of /proc/PID/status (in kB there), in MiB."""
    status = Path(f"/proc/{pid or 'self'}/status").read_text()
    found = {}
    for line in status.splitlines():
        name, _, value = line.partition(":")
        if name in fields:
            found[name] = int(value.split()[0]) / 1024
    return found


def main(argv: list[str]) -> None:
    """`SITE_JSON SETTLE_S DURATION_S SAMPLE_S` (the site as `SiteConfig.model_dump_json`
    writes it): measure and print the figures as JSON."""
    site_json, settle_s, duration_s, sample_s = argv
    footprint = measure_footprint(
        SiteConfig.model_validate_json(Path(site_json).read_text()),
        settle_s=float(settle_s),
        duration_s=float(duration_s),
        sample_s=float(sample_s),
    )
    json.dump(footprint.as_json(), sys.stdout)
