"""Prometheus metrics in the text exposition format (version 0.0.4).

Two kinds of facts, each kept in one place:

- What the site snapshot already holds (node currents and limits, device
  request statistics) is rendered from the latest `SiteState`, never copied.
- What it does not hold is fed into a `MetricsRegistry` by the subsystem that
  knows it: the control loop observes each cycle time, the OCPP server sets
  its connection count, the CSMS proxy its upstream queue depth.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from hubgate.control.energy import BatteryMode
from hubgate.state import ChargingSession, EnergyState, SiteState

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

CYCLE_TIME_BUCKETS_S = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
PHASES = ("L1", "L2", "L3")

Labels = tuple[tuple[str, str], ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Iterable[tuple[str, str]]) -> str:
    body = ",".join(f'{name}="{_escape(value)}"' for name, value in labels)
    return "{" + body + "}" if body else ""


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def _header(name: str, kind: str, help_text: str) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]


@dataclass
class Gauge:
    """A value per label set, set by the subsystem that owns the fact."""

    name: str
    help: str
    label_names: tuple[str, ...] = ()
    _values: dict[Labels, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.label_names:
            self._values[()] = 0.0

    def set(self, value: float, **labels: str) -> None:
        """Set the value for one label set (all of `label_names`, nothing else)."""
        if set(labels) != set(self.label_names):
            raise ValueError(f"{self.name} takes labels {self.label_names}, got {tuple(labels)}")
        self._values[tuple((name, labels[name]) for name in self.label_names)] = float(value)

    def remove(self, **labels: str) -> None:
        """Forget one label set (a charge point that disconnected for good)."""
        self._values.pop(tuple((name, labels[name]) for name in self.label_names), None)

    def render(self) -> list[str]:
        """The exposition lines of this gauge."""
        lines = _header(self.name, "gauge", self.help)
        lines += [f"{self.name}{_labels(k)} {_number(v)}" for k, v in sorted(self._values.items())]
        return lines


@dataclass
class Histogram:
    """A distribution with fixed cumulative buckets (upper bounds in seconds)."""

    name: str
    help: str
    buckets: tuple[float, ...]
    _counts: list[int] = field(init=False)
    _sum: float = 0.0
    _count: int = 0

    def __post_init__(self) -> None:
        if list(self.buckets) != sorted(set(self.buckets)):
            raise ValueError(f"buckets must be strictly increasing, got {self.buckets}")
        self._counts = [0] * len(self.buckets)

    def observe(self, value: float) -> None:
        """Count one observation."""
        index = bisect_left(self.buckets, value)
        if index < len(self._counts):
            self._counts[index] += 1
        self._sum += value
        self._count += 1

    def render(self) -> list[str]:
        """The exposition lines: cumulative buckets, +Inf, sum and count."""
        lines = _header(self.name, "histogram", self.help)
        cumulative = 0
        for bound, count in zip(self.buckets, self._counts, strict=True):
            cumulative += count
            lines.append(f'{self.name}_bucket{{le="{bound!r}"}} {cumulative}')
        lines.append(f'{self.name}_bucket{{le="+Inf"}} {self._count}')
        lines.append(f"{self.name}_sum {_number(self._sum)}")
        lines.append(f"{self.name}_count {self._count}")
        return lines


class MetricsRegistry:
    """The metrics fed by subsystems; the snapshot-derived ones are added at render time."""

    def __init__(self) -> None:
        self.cycle_time = Histogram(
            "hubgate_cycle_time_seconds",
            "Duration of one control cycle",
            CYCLE_TIME_BUCKETS_S,
        )
        self.ocpp_connections = Gauge(
            "hubgate_ocpp_connections",
            "Charge points connected over OCPP, by protocol version",
            ("version",),
        )
        self.upstream_queue_depth = Gauge(
            "hubgate_upstream_queue_depth",
            "Messages waiting to be forwarded to the CSMS",
        )

    def render(self, state: SiteState | None, sessions: Iterable[ChargingSession] = ()) -> str:
        """The whole exposition text: registry metrics, then those of the latest snapshot
        and the charging sessions going on."""
        lines = self.cycle_time.render()
        lines += self.ocpp_connections.render()
        lines += self.upstream_queue_depth.render()
        if state is not None:
            lines += snapshot_metrics(state)
        lines += _family(
            "hubgate_session_energy_kwh",
            "gauge",
            "Energy delivered in each charging session going on",
            {(("connector", s.connector), ("session", str(s.id))): s.energy_kwh for s in sessions},
        )
        return "\n".join(lines) + "\n"


def _family(
    name: str, kind: str, help_text: str, samples: Mapping[Labels, float | None]
) -> list[str]:
    lines = _header(name, kind, help_text)
    lines += [f"{name}{_labels(k)} {_number(v)}" for k, v in samples.items() if v is not None]
    return lines


def snapshot_metrics(state: SiteState) -> list[str]:
    """Per-node per-phase current and limit, per-device requests, errors and latency."""
    measured: dict[Labels, float | None] = {}
    commanded: dict[Labels, float | None] = {}
    limit: dict[Labels, float | None] = {}
    limit_w: dict[Labels, float | None] = {}
    limit_source: dict[Labels, float | None] = {}
    limit_left: dict[Labels, float | None] = {}
    for node in state.nodes:
        of: Labels = (("node", node.id),)
        for index, phase in enumerate(PHASES):
            at: Labels = (*of, ("phase", phase))
            measured[at] = None if node.measured_a is None else node.measured_a[index]
            commanded[at] = node.commanded_a[index]
            limit[at] = None if node.limit_a is None else node.limit_a[index]
        if node.power_limit_kw is not None:
            limit_w[of] = node.power_limit_kw * 1000
        if node.limit_source is not None:
            limit_source[(*of, ("source", node.limit_source))] = 1.0
        if node.limit_expires_at is not None:
            limit_left[of] = max(node.limit_expires_at - state.at, 0.0)
    requests: dict[Labels, float | None] = {}
    errors: dict[Labels, float | None] = {}
    latency: dict[Labels, float | None] = {}
    reachable: dict[Labels, float | None] = {}
    for device in state.devices:
        key: Labels = (("device", device.id),)
        requests[key] = device.requests
        errors[key] = device.errors
        reachable[key] = 1.0 if device.reachable else 0.0
        for quantile, ms in (("0.5", device.latency_p50_ms), ("0.99", device.latency_p99_ms)):
            latency[(*key, ("quantile", quantile))] = None if ms is None else ms / 1000
    return [
        *_family(
            "hubgate_node_current_amperes", "gauge", "Measured current per node and phase", measured
        ),
        *_family(
            "hubgate_node_commanded_amperes",
            "gauge",
            "Sum of setpoints below a node per phase",
            commanded,
        ),
        *_family(
            "hubgate_node_limit_amperes",
            "gauge",
            "Current limit in force per node and phase (power limits as current on 3 phases)",
            limit,
        ),
        *_family(
            "hubgate_node_limit_watts",
            "gauge",
            "The limit in force per node as power at the site's voltage",
            limit_w,
        ),
        *_family(
            "hubgate_node_limit_source",
            "gauge",
            "1 for the source that sets a node's limit in force (cap, grid-operator, api, ...)",
            limit_source,
        ),
        *_family(
            "hubgate_node_limit_expiry_seconds",
            "gauge",
            "Seconds until a node's binding limit lapses (only for limits that lapse)",
            limit_left,
        ),
        *_family("hubgate_device_requests_total", "counter", "Requests sent to a device", requests),
        *_family(
            "hubgate_device_request_errors_total",
            "counter",
            "Requests to a device that failed",
            errors,
        ),
        *_family(
            "hubgate_device_request_latency_seconds",
            "gauge",
            "Request latency quantiles per device",
            latency,
        ),
        *_family(
            "hubgate_device_reachable", "gauge", "1 while the device answers, else 0", reachable
        ),
        *_family("hubgate_cycles_total", "counter", "Control cycles run", {(): state.cycle}),
        *energy_metrics(state.energy),
    ]


def energy_metrics(energy: EnergyState | None) -> list[str]:
    """The battery and PV, on a site that has them."""
    if energy is None:
        return []
    mode = energy.battery_mode
    families = (
        ("hubgate_battery_soc_percent", "Battery state of charge", energy.battery_soc_percent),
        (
            "hubgate_battery_power_watts",
            "Battery power, positive when discharging",
            energy.battery_power_kw,
        ),
        ("hubgate_pv_power_watts", "PV output", energy.pv_power_kw),
        (
            "hubgate_grid_import_watts",
            "Grid import, negative when exporting",
            energy.grid_import_kw,
        ),
        ("hubgate_pv_budget_watts", "What PV-mode connectors may draw", energy.pv_budget_kw),
    )
    lines: list[str] = []
    for name, help_text, value in families:
        scale = 1.0 if name.endswith("_percent") else 1000.0
        lines += _family(name, "gauge", help_text, {(): None if value is None else value * scale})
    lines += _family(
        "hubgate_battery_mode",
        "gauge",
        "1 for the battery's mode this cycle",
        {(("mode", m.value),): float(m.value == mode) for m in BatteryMode},
    )
    return lines
