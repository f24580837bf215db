"""Battery and PV in /metrics, parsed by prometheus_client as the independent peer."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from hubgate.api.metrics import MetricsRegistry
from hubgate.state import EnergyState
from tests.support.api import snapshot


def parsed(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            assert isinstance(sample, Sample)
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def test_battery_and_pv_gauges() -> None:
    energy = EnergyState(
        battery_mode="pv-charge",
        battery_soc_percent=55.0,
        battery_power_kw=-4.5,
        battery_command_kw=-5.0,
        pv_power_kw=12.0,
        grid_import_kw=-1.5,
        peak_target_kw=None,
        pv_budget_kw=6.0,
    )
    text = MetricsRegistry().render(snapshot(3).model_copy(update={"energy": energy}))
    got = parsed(text)
    assert got[("hubgate_battery_soc_percent", frozenset())] == 55.0
    assert got[("hubgate_battery_power_watts", frozenset())] == -4500.0
    assert got[("hubgate_pv_power_watts", frozenset())] == 12_000.0
    assert got[("hubgate_grid_import_watts", frozenset())] == -1500.0
    assert got[("hubgate_pv_budget_watts", frozenset())] == 6000.0
    modes = {
        dict(labels)["mode"]: value
        for (name, labels), value in got.items()
        if name == "hubgate_battery_mode"
    }
    assert modes["pv-charge"] == 1.0
    assert sum(modes.values()) == 1.0
    assert len(modes) == 6


def test_no_battery_gauges_without_battery_and_pv() -> None:
    text = MetricsRegistry().render(snapshot(3))
    assert "hubgate_battery" not in text
    assert "hubgate_pv_" not in text
