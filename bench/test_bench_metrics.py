"""Scraping /metrics of the 200-connector depot: hubgate's renderer against prometheus_client.

Both render the same facts from the same snapshot and registry values: node
currents, commands and limits per phase, device statistics, the cycle-time
histogram and the subsystem gauges.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from pytest_benchmark.fixture import BenchmarkFixture

from hubgate.api.metrics import CYCLE_TIME_BUCKETS_S, PHASES, MetricsRegistry
from hubgate.config.loader import load_site
from hubgate.state import DeviceHealth, SiteState
from tests.support import states

DEPOT = Path(__file__).resolve().parent.parent / "examples" / "sites" / "depot-200.toml"


def depot_state() -> SiteState:
    """A snapshot of every node, connector and Modbus device of the depot."""
    site = load_site(DEPOT)
    nodes = [
        states.node(
            "grid",
            measured_a=(900.0, 880.0, 910.0),
            commanded_a=(950.0, 950.0, 950.0),
            limit_a=site.grid.phase_current_limit_a,
        )
    ]
    nodes += [
        states.node(
            n.id,
            kind=n.kind.value,
            parent=n.parent,
            measured_a=(100.0, 101.0, 99.5),
            commanded_a=(110.0, 110.0, 110.0),
            limit_a=n.phase_current_limit_a,
        )
        for n in site.nodes
    ]
    connectors = [
        states.connector(f"{c.id}#{k.id}", node=c.node, protocol="ocpp" if c.ocpp else "modbus")
        for c in site.chargers
        for k in c.connectors
    ]
    devices = [
        DeviceHealth(
            id=d.id,
            kind="meter",
            protocol="modbus-tcp",
            reachable=True,
            requests=12_345,
            errors=3,
            latency_p50_ms=2.1,
            latency_p99_ms=8.7,
        )
        for d in [*site.meters, *(c for c in site.chargers if c.modbus)]
    ]
    return states.site_state(
        site=site.site.name, cycle=1000, nodes=nodes, connectors=connectors, devices=devices
    )


OBSERVATIONS = [0.001 + (i % 50) / 1000 for i in range(1000)]


def fed_registry() -> MetricsRegistry:
    metrics = MetricsRegistry()
    for seconds in OBSERVATIONS:
        metrics.cycle_time.observe(seconds)
    metrics.ocpp_connections.set(90, version="2.0.1")
    metrics.ocpp_connections.set(10, version="1.6")
    metrics.upstream_queue_depth.set(4)
    return metrics


def fed_prometheus_client(state: SiteState) -> CollectorRegistry:
    """The same values in prometheus_client's own metrics plus a collector for the snapshot."""
    registry = CollectorRegistry(auto_describe=False)
    cycle_time = Histogram(
        "hubgate_cycle_time_seconds", "Cycle", buckets=CYCLE_TIME_BUCKETS_S, registry=registry
    )
    for seconds in OBSERVATIONS:
        cycle_time.observe(seconds)
    ocpp = Gauge("hubgate_ocpp_connections", "OCPP", ["version"], registry=registry)
    ocpp.labels("2.0.1").set(90)
    ocpp.labels("1.6").set(10)
    Gauge("hubgate_upstream_queue_depth", "Queue", registry=registry).set(4)
    registry.register(SnapshotCollector(state))
    return registry


class SnapshotCollector:
    """The snapshot's facts as prometheus_client metric families, built at scrape time."""

    def __init__(self, state: SiteState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        families = {
            name: GaugeMetricFamily(name, name, labels=["node", "phase"])
            for name in (
                "hubgate_node_current_amperes",
                "hubgate_node_commanded_amperes",
                "hubgate_node_limit_amperes",
            )
        }
        for node in self.state.nodes:
            for i, phase in enumerate(PHASES):
                if node.measured_a is not None:
                    families["hubgate_node_current_amperes"].add_metric(
                        [node.id, phase], node.measured_a[i]
                    )
                families["hubgate_node_commanded_amperes"].add_metric(
                    [node.id, phase], node.commanded_a[i]
                )
                if node.limit_a is not None:
                    families["hubgate_node_limit_amperes"].add_metric(
                        [node.id, phase], node.limit_a[i]
                    )
        yield from families.values()
        requests = CounterMetricFamily("hubgate_device_requests", "Requests", labels=["device"])
        errors = CounterMetricFamily("hubgate_device_request_errors", "Errors", labels=["device"])
        latency = GaugeMetricFamily(
            "hubgate_device_request_latency_seconds", "Latency", labels=["device", "quantile"]
        )
        reachable = GaugeMetricFamily("hubgate_device_reachable", "Up", labels=["device"])
        for d in self.state.devices:
            requests.add_metric([d.id], d.requests)
            errors.add_metric([d.id], d.errors)
            reachable.add_metric([d.id], 1.0 if d.reachable else 0.0)
            for q, ms in (("0.5", d.latency_p50_ms), ("0.99", d.latency_p99_ms)):
                if ms is not None:
                    latency.add_metric([d.id, q], ms / 1000)
        yield from (requests, errors, latency, reachable)
        yield CounterMetricFamily("hubgate_cycles", "Cycles", value=self.state.cycle)


def scrape(impl: str) -> Callable[[], bytes]:
    state = depot_state()
    if impl == "hubgate":
        metrics = fed_registry()
        return lambda: metrics.render(state).encode()
    registry = fed_prometheus_client(state)
    return lambda: generate_latest(registry)


@pytest.mark.benchmark(group="metrics-scrape-depot-200")
@pytest.mark.parametrize("impl", ["hubgate", "prometheus-client"])
def test_metrics_scrape(benchmark: BenchmarkFixture, impl: str) -> None:
    text = benchmark(scrape(impl))
    assert b'hubgate_node_limit_amperes{node="grid",phase="L1"}' in text
    assert text.count(b"\n") > 200
