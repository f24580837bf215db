"""Grid-operator readings become audited GRID_OPERATOR leases; silence means the fallback."""

from __future__ import annotations

from hubgate.control.grid_operator import GridOperatorInput, limit_kw_of
from hubgate.control.limits import SITE, LimitBook, LimitSource
from hubgate.devices.model import Reading
from hubgate.profiles.model import Quantity


def reading(quantity: Quantity, value: float) -> Reading:
    return Reading(at=0.0, values={quantity: value})


def test_box_percent_power_and_relay() -> None:
    assert limit_kw_of(reading(Quantity.GRID_LIMIT_PERCENT, 30), 100.0) == 30.0
    assert limit_kw_of(reading(Quantity.GRID_LIMIT_PERCENT, 130), 100.0) == 100.0
    assert limit_kw_of(reading(Quantity.GRID_LIMIT_POWER, 42_000), 100.0) == 42.0
    assert limit_kw_of(reading(Quantity.RELAY_DIM_14A, 1), 100.0) == 0.0
    assert limit_kw_of(reading(Quantity.RELAY_DIM_14A, 0), 100.0) == 100.0
    assert limit_kw_of(Reading(at=0.0), 100.0) is None


def test_changes_only_are_audited_and_silence_falls_back() -> None:
    book = LimitBook()
    box = GridOperatorInput(100.0, fallback_percent=50.0, silent_after_s=5.0, origin="box")
    for t in range(3):
        box.update(book, reading(Quantity.GRID_LIMIT_PERCENT, 100), float(t))
    box.update(book, reading(Quantity.GRID_LIMIT_PERCENT, 30), 3.0)
    box.update(book, None, 6.0)  # silent for 3 s: the last value holds
    box.update(book, None, 9.0)  # silent for 6 s: the fallback
    audit = book.audit()
    assert [(e.at, e.limit.power_kw) for e in audit] == [(0.0, 100.0), (3.0, 30.0), (9.0, 50.0)]
    assert {(e.target, e.source) for e in audit} == {(SITE, LimitSource.GRID_OPERATOR)}
    assert [e.origin for e in audit] == [
        "box",
        "box",
        "fallback 50 %: box silent for more than 5 s",
    ]
