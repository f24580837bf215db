"""`hubgate bench`: measure this machine: the gateway's whole control cycle against a
simulated site (and from it the largest site a cycle holds), then the parts' speed against
their peers: Modbus codec, allocation, Modbus master, OCPP server."""

from __future__ import annotations

import math
import os
import platform
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from hubgate import __version__
from hubgate.benchmarking import capacity
from hubgate.benchmarking.allocation_speed import measure_allocation
from hubgate.benchmarking.codec_speed import measure_codec
from hubgate.benchmarking.end_to_end import CycleRun, measure_cycle
from hubgate.benchmarking.modbus_io import measure_modbus_io
from hubgate.benchmarking.ocpp_cost import listener_cost_s, measure_ocpp, station_core_share
from hubgate.benchmarking.timing import Comparison, per_call_s


@dataclass(frozen=True)
class BenchSettings:
    """How long to measure: `QUICK` one to two minutes, `FULL` three to five."""

    quick: bool
    settle_s: float
    """After every station connected: how long the site runs before the window."""
    cycles: int
    """Control cycles in the end-to-end window."""
    min_round_s: float
    rounds: int
    allocation_sizes: tuple[int, ...]
    modbus_devices: tuple[int, ...]
    modbus_rounds: int
    ocpp_messages: int
    listener_stations: int
    listener_messages: int


QUICK = BenchSettings(True, 30.0, 20, 0.005, 3, (10, 100, 1_000), (10, 50), 5, 200, 5, 20)
FULL = BenchSettings(
    False, 30.0, 120, 0.05, 7, (10, 100, 1_000, 10_000), (25, 250), 31, 2_000, 20, 100
)


def run_bench(settings: BenchSettings, scenario: Path) -> dict[str, Any]:
    """Every measurement and the capacity derived from the end-to-end cycle of `scenario`'s
    site, as JSON-ready data."""
    run = measure_cycle(scenario, settle_s=settings.settle_s, cycles=settings.cycles)
    time_call = partial(per_call_s, min_round_s=settings.min_round_s, rounds=settings.rounds)
    codec = measure_codec(time_call)
    allocation = measure_allocation(settings.allocation_sizes, time_call)
    modbus = {n: measure_modbus_io(n, settings.modbus_rounds) for n in settings.modbus_devices}
    session = measure_ocpp(settings.ocpp_messages)
    listener = listener_cost_s(settings.listener_stations, settings.listener_messages)
    station_share = station_core_share(listener["MeterValues"], listener["Heartbeat"])
    session_stations = session.stations_per_core()
    return {
        "hubgate_version": __version__,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "quick": settings.quick,
        "codec": {case: c.as_json() for case, c in codec.items()},
        "allocation": {"cycle_us": {str(n): s * 1e6 for n, s in allocation.items()}},
        "modbus": {
            str(n): {**read.as_json(), "round_wall_ms": wall.round_wall_s * 1e3}
            for n, (read, wall) in modbus.items()
        },
        "ocpp": {
            "session_per_message": {a: c.as_json() for a, c in session.per_message.items()},
            "listener_per_message_us": {a: s * 1e6 for a, s in listener.items()},
            "stations_per_core": math.floor(1 / station_share),
            "session_stations_per_core": _per_core(session_stations),
        },
        "end_to_end": run.as_json(),
        "capacity": _capacity(run),
    }


def _capacity(run: CycleRun) -> dict[str, Any]:
    connectors = capacity.max_connectors(run)
    return {
        "model": capacity.MODEL,
        "headroom": capacity.HEADROOM,
        "cycle_s": run.cycle_s,
        "max_connectors": connectors,
        "measured_connectors": run.connectors,
        "extrapolated": connectors > run.connectors,
    }


def _per_core(share: Comparison) -> dict[str, Any]:
    """Stations per core from per-station core shares (the ratio is the same either way)."""
    return {
        "hubgate": math.floor(1 / share.hubgate_s),
        "peer": share.peer,
        "peer_stations": None if share.peer_s is None else math.floor(1 / share.peer_s),
        "ratio": share.ratio,
    }


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} us"


def ratio_text(value: float | None) -> str:
    return "peer not installed" if value is None else f"{value:.1f}x"


def render(report: dict[str, Any]) -> str:
    """The report as text for a person."""
    machine = report["machine"]
    lines = [
        f"hubgate {report['hubgate_version']} capacity report"
        f" ({machine['cpus']} CPUs, {machine['platform']}, Python {machine['python']}"
        f"{', quick' if report['quick'] else ''})",
        "",
        *_end_to_end_lines(report["end_to_end"], report["capacity"]),
        "",
        "Modbus codec (median per call; hubgate / pymodbus, ratio):",
    ]
    for case, c in report["codec"].items():
        lines.append(
            f"  {case:40} {_us(c['hubgate_us']):>11} {_us(c['peer_us']):>11}  {ratio_text(c['ratio'])}"
        )
    lines += ["", "Allocation (one cycle, median):"]
    for size, us in report["allocation"]["cycle_us"].items():
        lines.append(f"  {int(size):>6} connectors  {us / 1000:9.3f} ms")
    lines += ["", "Modbus master, FC3 x 10 from loopback devices read at once (CPU per read):"]
    for devices, read in report["modbus"].items():
        lines.append(
            f"  {int(devices):>6} devices  {_us(read['hubgate_us']):>10}  pymodbus"
            f" {_us(read['peer_us']):>10}  {ratio_text(read['ratio'])}"
            f"  (round: {read['round_wall_ms']:.1f} ms wall)"
        )
    lines += ["", "OCPP 1.6 server (CPU per message):"]
    ocpp = report["ocpp"]
    for action, c in ocpp["session_per_message"].items():
        full = ocpp["listener_per_message_us"][action]
        lines.append(
            f"  {action:12} whole path {full:8.1f} us;  session only {_us(c['hubgate_us'])}"
            f" vs ocpp package {_us(c['peer_us'])}  {ratio_text(c['ratio'])}"
        )
    session = ocpp["session_stations_per_core"]
    lines += [
        f"  stations per core (MeterValues every 10 s, Heartbeat every 60 s): "
        f"{ocpp['stations_per_core']:,} (whole path)",
        f"  session only: hubgate {session['hubgate']:,}, ocpp package "
        f"{session['peer_stations'] or 0:,}  {ratio_text(session['ratio'])}",
    ]
    lines += ["", "Model: " + report["capacity"]["model"]]
    return "\n".join(lines)


def _end_to_end_lines(run: dict[str, Any], capacity: dict[str, Any]) -> list[str]:
    cycle_s = run["cycle_s"]
    lines = [
        f"Measured, end to end ({run['scenario']}: {run['connectors']} connectors,"
        f" {run['modbus_connectors']} Modbus TCP and {run['ocpp_connectors']} OCPP, {run['devices']}"
        " devices; the simulator in its own process, over loopback sockets):",
        f"  {run['cycles']} cycles of {cycle_s:g} s in {run['window_s']:.1f} s; devices answering"
        f" {run['devices_reachable']} of {run['devices']}, OCPP stations connected"
        f" {run['ocpp_stations_online']}; load average {run['load_before']:.1f} ->"
        f" {run['load_after']:.1f}",
        f"  gateway CPU per cycle {run['cpu_per_cycle_ms']:.1f} ms (median"
        f" {run['cpu_per_cycle_median_ms']:.1f} ms), {run['cpu_per_connector_us']:.0f} us per"
        " connector",
        f"  latency, sensing to last command: p50 {run['latency_p50_ms']:.0f} ms, p99"
        f" {run['latency_p99_ms']:.0f} ms, max {run['latency_max_ms']:.0f} ms",
    ]
    if not run["kept_cycle"]:
        lines.append(
            f"  NOT KEPT: the loop fell behind its {cycle_s:g} s cycle at this size on this"
            " machine now (the simulator shares its cores)"
        )
    how = "extrapolated" if capacity["extrapolated"] else "within the measured size"
    lines.append(
        f"Capacity ({how}): up to {capacity['max_connectors']:,} connectors per {cycle_s:g} s"
        f" cycle: the measured CPU per connector, scaled linearly, within"
        f" {capacity['headroom']:.0%} of the cycle (measured at {run['connectors']})"
    )
    return lines
