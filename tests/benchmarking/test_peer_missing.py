"""Without the peer library, `hubgate bench` still measures hubgate and says the peer is missing."""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest

from hubgate.benchmarking.codec_speed import measure_codec
from hubgate.benchmarking.ocpp_cost import measure_ocpp
from hubgate.benchmarking.report import ratio_text


def once(fn: Callable[[], object]) -> float:
    fn()
    return 1e-6


def test_codec_without_pymodbus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pymodbus.client", None)  # import raises ImportError
    for comparison in measure_codec(once).values():
        assert comparison.hubgate_s == 1e-6
        assert comparison.peer == "pymodbus"
        assert comparison.peer_s is None
        assert comparison.ratio is None
        assert comparison.as_json()["peer_us"] is None
    assert ratio_text(None) == "peer not installed"


def test_ocpp_without_the_ocpp_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ocpp.routing", None)
    cost = measure_ocpp(20)
    assert all(c.peer_s is None and c.hubgate_s > 0 for c in cost.per_message.values())
    stations = cost.stations_per_core()
    assert stations.peer_s is None
    assert stations.hubgate_s > 0
