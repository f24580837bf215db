"""`hubgate bench`: measure this machine, then report codec and allocation speed, the
largest site that meets a 1 s and a 100 ms cycle, and OCPP stations per core."""

from __future__ import annotations

import math
import os
import platform
from dataclasses import dataclass
from functools import partial
from typing import Any

from hubgate import __version__
from hubgate.benchmarking import capacity
from hubgate.benchmarking.allocation_speed import measure_allocation
from hubgate.benchmarking.codec_speed import measure_codec
from hubgate.benchmarking.modbus_io import measure_modbus_io
from hubgate.benchmarking.ocpp_cost import listener_cost_s, measure_ocpp, station_core_share
from hubgate.benchmarking.timing import Comparison, per_call_s

CYCLES_S = {"1s": 1.0, "100ms": 0.1}


@dataclass(frozen=True)
class BenchSettings:
    """How long to measure: `QUICK` takes a few seconds, `FULL` about ten."""

    min_round_s: float
    rounds: int
    allocation_sizes: tuple[int, ...]
    modbus_devices: tuple[int, ...]
    modbus_rounds: int
    ocpp_messages: int
    listener_stations: int
    listener_messages: int


QUICK = BenchSettings(0.005, 3, (10, 100, 1_000), (10, 50), 5, 200, 5, 20)
FULL = BenchSettings(0.05, 7, (10, 100, 1_000, 10_000), (25, 250), 31, 2_000, 20, 100)


def run_bench(settings: BenchSettings) -> dict[str, Any]:
    """Every measurement and the capacity derived from them, as JSON-ready data."""
    time_call = partial(per_call_s, min_round_s=settings.min_round_s, rounds=settings.rounds)
    codec = measure_codec(time_call)
    allocation = measure_allocation(settings.allocation_sizes, time_call)
    modbus = {n: measure_modbus_io(n, settings.modbus_rounds) for n in settings.modbus_devices}
    session = measure_ocpp(settings.ocpp_messages)
    listener = listener_cost_s(settings.listener_stations, settings.listener_messages)
    station_share = station_core_share(listener["MeterValues"], listener["Heartbeat"])
    model = capacity.CostModel(
        allocation, {n: read.hubgate_s for n, (read, _) in modbus.items()}, station_share
    )
    session_stations = session.stations_per_core()
    return {
        "hubgate_version": __version__,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "quick": settings is QUICK,
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
        "capacity": {
            "model": capacity.MODEL,
            "headroom": capacity.HEADROOM,
            "cycles": {name: _cycle(model, cycle_s) for name, cycle_s in CYCLES_S.items()},
        },
    }


def _per_core(share: Comparison) -> dict[str, Any]:
    """Stations per core from per-station core shares (the ratio is the same either way)."""
    return {
        "hubgate": math.floor(1 / share.hubgate_s),
        "peer": share.peer,
        "peer_stations": None if share.peer_s is None else math.floor(1 / share.peer_s),
        "ratio": share.ratio,
    }


def _cycle(model: capacity.CostModel, cycle_s: float) -> dict[str, Any]:
    connectors = model.max_connectors(cycle_s)
    chargers = math.ceil(connectors / capacity.CONNECTORS_PER_CHARGER)
    return {
        "cycle_s": cycle_s,
        "max_connectors": connectors,
        "extrapolated": {
            "allocation": connectors > max(model.allocation_s),
            "modbus": chargers > max(model.modbus_read_s),
        },
        "allocation_ms": model.allocation_at(connectors) * 1e3,
        "modbus_read_us": model.modbus_read_at(chargers) * 1e6,
        "modbus_ms": chargers * model.modbus_read_at(chargers) * 1e3,
        "ocpp_ms": chargers * cycle_s * model.ocpp_station_share * 1e3,
    }


def _extrapolated(which: dict[str, bool]) -> str:
    names = [name for name, beyond in which.items() if beyond]
    return f"; {' and '.join(names)} extrapolated beyond the measured sizes" if names else ""


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
        "",
        f"Capacity (work per cycle within {report['capacity']['headroom']:.0%} of the cycle):",
    ]
    for name, cycle in report["capacity"]["cycles"].items():
        lines.append(
            f"  {name:>5} cycle: up to {cycle['max_connectors']:,} connectors"
            f" (allocation {cycle['allocation_ms']:.1f} ms + Modbus {cycle['modbus_ms']:.1f} ms"
            f" + OCPP {cycle['ocpp_ms']:.1f} ms"
            f"{_extrapolated(cycle['extrapolated'])})"
        )
    lines += ["", "Model: " + report["capacity"]["model"]]
    return "\n".join(lines)
