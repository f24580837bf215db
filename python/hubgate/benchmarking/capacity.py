"""From a measured end-to-end cycle to the largest site a cycle holds (`MODEL`)."""

from __future__ import annotations

import math

from hubgate.benchmarking.end_to_end import CycleRun

HEADROOM = 0.5
"""Share of each cycle the gateway's work may take; the rest is for bursts (many sessions
starting at once), the API, garbage collection and jitter."""

MODEL = (
    "Measured: the gateway (this process: control loop, OCPP listener, API) controls a simulated "
    "site served by `hubgate sim --serve` in its own process over loopback sockets, at the site's "
    "cycle; its CPU time per cycle covers everything it did (Modbus sensing and setpoint writes, "
    "the OCPP stations' traffic and charging profiles, allocation, records). Extrapolated: the "
    "largest site of the same mix of Modbus and OCPP chargers whose CPU per cycle, the measured "
    "cost per connector scaled linearly, fits in the headroom share of one core per cycle. The "
    "simulator shares this machine's cores, so the measured latency is an upper bound for a "
    "gateway with its cores to itself. Not modelled: serial (RTU) line time, TLS, the cloud "
    "uplink, devices slower than the simulator."
)


def max_connectors(run: CycleRun, headroom: float = HEADROOM) -> int:
    """The largest connector count whose CPU per cycle, at `run`'s cost per connector,
    fits in `headroom` of `run`'s cycle."""
    return math.floor(headroom * run.cycle_s / run.cpu_per_connector_s)
