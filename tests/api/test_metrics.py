"""/metrics in the Prometheus text format, parsed by prometheus_client as the independent peer."""

from __future__ import annotations

import math

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from hubgate.api.metrics import Gauge, Histogram, MetricsRegistry
from hubgate.state import ChargingSession
from tests.support.api import RunningApi, snapshot


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the exposition, keyed by name and labels."""
    parsed: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            assert isinstance(sample, Sample)
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in parsed, f"duplicate sample {key}"
            parsed[key] = sample.value
    return parsed


def at(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return (name, frozenset(labels.items()))


async def test_metrics_endpoint_parses_and_carries_the_site(api: RunningApi) -> None:
    metrics = api.ctx.metrics
    for seconds in (0.004, 0.004, 0.03, 5.0):
        metrics.cycle_time.observe(seconds)
    metrics.ocpp_connections.set(2, version="2.0.1")
    metrics.ocpp_connections.set(1, version="1.6")
    metrics.upstream_queue_depth.set(17)
    state = snapshot(9, grid_a=(41.5, 35.0, 30.0))
    grid = state.nodes[0].model_copy(
        update={
            "limit_a": (30.0, 30.0, 30.0),
            "power_limit_kw": 20.7,
            "limit_source": "grid-operator",
        }
    )
    board = state.nodes[1].model_copy(
        update={"limit_source": "api", "limit_expires_at": state.at + 90}
    )
    api.ctx.hub.publish(state.model_copy(update={"nodes": (grid, board)}))

    response = await api.client.get("/metrics")
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    got = samples(response.text)

    assert got[at("hubgate_cycle_time_seconds_bucket", le="0.002")] == 0
    assert got[at("hubgate_cycle_time_seconds_bucket", le="0.005")] == 2
    assert got[at("hubgate_cycle_time_seconds_bucket", le="0.05")] == 3
    assert got[at("hubgate_cycle_time_seconds_bucket", le="2.0")] == 3
    assert got[at("hubgate_cycle_time_seconds_bucket", le="+Inf")] == 4
    assert got[at("hubgate_cycle_time_seconds_count")] == 4
    assert got[at("hubgate_cycle_time_seconds_sum")] == pytest.approx(5.038)
    assert got[at("hubgate_ocpp_connections", version="2.0.1")] == 2
    assert got[at("hubgate_upstream_queue_depth")] == 17

    assert got[at("hubgate_node_current_amperes", node="grid", phase="L1")] == 41.5
    assert got[at("hubgate_node_limit_amperes", node="board", phase="L3")] == 63
    assert got[at("hubgate_node_limit_amperes", node="grid", phase="L1")] == 30
    assert got[at("hubgate_node_limit_watts", node="grid")] == 20_700
    assert got[at("hubgate_node_limit_source", node="grid", source="grid-operator")] == 1
    assert got[at("hubgate_node_limit_source", node="board", source="api")] == 1
    assert got[at("hubgate_node_limit_expiry_seconds", node="board")] == 90
    assert at("hubgate_node_limit_expiry_seconds", node="grid") not in got  # until changed
    assert got[at("hubgate_node_commanded_amperes", node="board", phase="L2")] == 16
    assert at("hubgate_node_current_amperes", node="board", phase="L1") not in got  # unmetered
    assert got[at("hubgate_device_requests_total", device="grid-meter")] == 900
    assert got[at("hubgate_device_request_errors_total", device="wb-2")] == 3
    assert (
        got[at("hubgate_device_request_latency_seconds", device="grid-meter", quantile="0.99")]
        == 0.009
    )
    assert got[at("hubgate_device_reachable", device="wb-2")] == 0
    assert got[at("hubgate_cycles_total")] == 9


def test_registry_before_the_first_cycle_is_valid() -> None:
    got = samples(MetricsRegistry().render(None))
    assert got[at("hubgate_upstream_queue_depth")] == 0
    assert got[at("hubgate_cycle_time_seconds_count")] == 0
    assert not any(name.startswith("hubgate_node") for name, _ in got)


def test_label_values_are_escaped() -> None:
    gauge = Gauge("g", "help", ("who",))
    gauge.set(math.inf, who='a "quoted"\\back\nslash')
    gauge.set(1, who="plain")
    gauge.remove(who="plain")
    text = "\n".join(gauge.render()) + "\n"
    assert samples(text) == {at("g", who='a "quoted"\\back\nslash'): math.inf}


def test_gauges_take_exactly_their_labels() -> None:
    gauge = Gauge("g", "help", ("version",))
    with pytest.raises(ValueError, match="takes labels"):
        gauge.set(1)
    with pytest.raises(ValueError, match="takes labels"):
        gauge.set(1, version="1.6", extra="x")


def test_histogram_buckets_must_increase() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        Histogram("h", "help", (0.1, 0.1, 0.2))


def test_the_energy_of_each_session_going_on() -> None:
    going = [
        ChargingSession(
            id=7, connector="cp-1#1", started_at=0.0, energy_kwh=12.5, peak_current_a=16.0
        ),
        ChargingSession(
            id=9, connector="cp-2#1", started_at=0.0, energy_kwh=0.25, peak_current_a=8.0
        ),
    ]
    got = samples(MetricsRegistry().render(None, going))
    assert got[at("hubgate_session_energy_kwh", connector="cp-1#1", session="7")] == 12.5
    assert got[at("hubgate_session_energy_kwh", connector="cp-2#1", session="9")] == 0.25
