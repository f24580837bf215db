"""Grid-operator readings become audited GRID_OPERATOR leases; a silent source holds its
last limit, then falls back; each step of a loss is an audit entry and an operator message."""

from __future__ import annotations

from hubgate.control.grid_operator import GridOperatorInput, limit_kw_of
from hubgate.control.limits import SITE, Limit, LimitBook, LimitSource
from hubgate.devices.model import Reading
from hubgate.profiles.model import Quantity


def reading(quantity: Quantity, value: float) -> Reading:
    return Reading(at=0.0, values={quantity: value})


def percent(value: float) -> Reading:
    return reading(Quantity.GRID_LIMIT_PERCENT, value)


def box(fallback: float | None = None, hold_s: float = 900.0) -> GridOperatorInput:
    return GridOperatorInput(
        100.0, silent_after_s=5.0, hold_last_s=hold_s, fallback_percent=fallback, origin="box"
    )


def in_force(book: LimitBook, now: float) -> float | None:
    return book.in_force(SITE, now).limit.power_kw


def test_box_percent_power_and_relay() -> None:
    assert limit_kw_of(percent(30), 100.0) == 30.0
    assert limit_kw_of(percent(130), 100.0) == 100.0
    assert limit_kw_of(reading(Quantity.GRID_LIMIT_POWER, 42_000), 100.0) == 42.0
    assert limit_kw_of(reading(Quantity.RELAY_DIM_14A, 1), 100.0) == 0.0
    assert limit_kw_of(reading(Quantity.RELAY_DIM_14A, 0), 100.0) == 100.0
    assert limit_kw_of(Reading(at=0.0), 100.0) is None


def test_changes_only_are_audited() -> None:
    book = LimitBook()
    source = box()
    for t in range(3):
        assert source.update(book, percent(100), float(t)) is None
    source.update(book, percent(30), 3.0)
    audit = book.audit()
    assert [(e.at, e.limit.power_kw, e.origin) for e in audit] == [
        (0.0, 100.0, "box"),
        (3.0, 30.0, "box"),
    ]
    assert {(e.target, e.source) for e in audit} == {(SITE, LimitSource.GRID_OPERATOR)}


def test_a_silent_box_holds_its_last_limit_then_falls_back() -> None:
    book = LimitBook()
    source = box(fallback=50.0, hold_s=900.0)
    source.update(book, percent(30), 0.0)
    assert source.update(book, None, 5.0) is None  # a missed read or two is no loss
    held = source.update(book, None, 6.0)
    assert held is not None
    assert "holding the last limit 30 kW" in held
    assert in_force(book, 6.0) == 30.0
    for t in (100.0, 500.0, 900.0):
        assert source.update(book, None, t) is None
        assert in_force(book, t) == 30.0  # the curtailment is not lifted while held
    fell = source.update(book, None, 901.0)
    assert fell == "silent for 901 s: fallback 50 kW"
    assert in_force(book, 901.0) == 50.0
    assert source.update(book, None, 2000.0) is None  # said once
    back = source.update(book, percent(40), 2001.0)
    assert back == "back: 40 kW"
    assert in_force(book, 2001.0) == 40.0
    origins = [e.origin for e in book.audit()]
    assert origins == [
        "box",
        "box: silent, holding the last limit",
        "box: silent 901 s, fallback",
        "box",
    ]


def test_without_a_fallback_the_last_limit_stays() -> None:
    book = LimitBook()
    source = box(fallback=None, hold_s=60.0)
    source.update(book, percent(30), 0.0)
    source.update(book, None, 10.0)
    lost = source.update(book, None, 61.0)
    assert lost == "silent for 61 s: the last limit stays 30 kW"
    assert in_force(book, 10_000.0) == 30.0
    assert book.audit()[-1].origin == "box: silent 61 s, the last limit stays"


def test_a_box_never_heard_from_gets_the_fallback_or_nothing() -> None:
    book = LimitBook()
    source = box(fallback=20.0)
    assert source.update(book, None, 0.0) is None
    assert source.update(book, None, 5.0) is None
    assert source.update(book, None, 6.0) == "never heard from: fallback 20 kW"
    assert in_force(book, 6.0) == 20.0
    assert source.update(book, None, 7.0) is None
    bare = LimitBook()
    quiet = box(fallback=None)
    quiet.update(bare, None, 0.0)
    message = quiet.update(bare, None, 6.0)
    assert message is not None
    assert "no grid-operator limit" in message
    assert in_force(bare, 6.0) is None


def test_a_lapsed_modbus_server_lease_is_held_and_cleared_when_written_again() -> None:
    book = LimitBook()
    source = GridOperatorInput(
        100.0,
        silent_after_s=5.0,
        hold_last_s=900.0,
        fallback_percent=None,
        origin="grid-operator",
        lease_source=LimitSource.MODBUS_SERVER,
    )
    book.set(
        SITE, LimitSource.MODBUS_SERVER, Limit(power_kw=30.0), now=0.0, lease_s=60, origin="plc"
    )
    assert source.update(book, None, 0.0) is None
    assert source.update(book, None, 59.0) is None
    assert book.lease(SITE, LimitSource.GRID_OPERATOR) is None  # the writer's own lease rules
    assert source.update(book, None, 64.0) is None  # lapsed at 60 s: within the grace
    held = source.update(book, None, 66.0)
    assert held is not None
    assert "holding the last limit 30 kW" in held
    assert in_force(book, 66.0) == 30.0  # the lapsed writer does not lift the curtailment
    book.set(
        SITE, LimitSource.MODBUS_SERVER, Limit(power_kw=80.0), now=70.0, lease_s=60, origin="plc"
    )
    assert source.update(book, None, 70.0) == "back: 80 kW"
    assert book.lease(SITE, LimitSource.GRID_OPERATOR) is None
    assert in_force(book, 70.0) == 80.0


def beat(limit: float, counter: float | None) -> Reading:
    """The limit-register box's reading: its limit and (unless missed) its counter."""
    values = {Quantity.GRID_LIMIT_PERCENT: limit}
    if counter is not None:
        values[Quantity.GRID_LIMIT_HEARTBEAT] = counter
    return Reading(at=0.0, values=values)


def test_a_box_whose_heartbeat_stops_is_silent_from_its_last_beat_until_it_moves() -> None:
    """A hung box answers with its last limit and a frozen counter: after heartbeat_s it is
    silent since its last beat (held, then the fallback), whatever limit it shows, until
    the counter moves again."""
    book = LimitBook()
    source = GridOperatorInput(
        100.0,
        silent_after_s=5.0,
        hold_last_s=30.0,
        fallback_percent=50.0,
        origin="box",
        heartbeat_s=10.0,
    )
    for t in range(11):  # the u16 counter wraps: 65535, 0, ... 4 at t = 10
        assert source.update(book, beat(30, (65_530 + t) & 0xFFFF), float(t)) is None
    for t in range(11, 21):  # frozen at 4 since t = 10; a missed counter does not move it
        assert source.update(book, beat(30, None if t == 15 else 4), float(t)) is None
    assert source.note is None
    held = source.update(book, beat(30, 4), 21.0)
    assert held == "heartbeat stopped for 11 s: holding the last limit 30 kW for up to 30 s"
    assert source.note == "box heartbeat stopped: holding its last limit 30 kW"
    assert source.update(book, beat(30, 4), 40.0) is None
    fell = source.update(book, None, 41.0)  # a missed read then: the loss is still the beat's
    assert fell == "heartbeat stopped for 31 s: fallback 50 kW"
    assert in_force(book, 41.0) == 50.0
    assert source.update(book, beat(100, 4), 42.0) is None  # a frozen box's raise: not taken
    assert in_force(book, 42.0) == 50.0
    assert source.note == "box heartbeat stopped: fallback 50 kW"
    assert source.update(book, None, 60.0) is None  # then silent as well: still the fallback
    assert in_force(book, 60.0) == 50.0
    # the counter moves: its raise is taken once it moved again (a restarting box may
    # serve its registers' defaults before its controller runs)
    assert source.update(book, beat(100, 5), 61.0) is None
    assert in_force(book, 61.0) == 50.0
    back = source.update(book, beat(100, 6), 62.0)
    assert back == "back (heartbeat moving again): 100 kW"
    assert in_force(book, 62.0) == 100.0
    assert source.note is None
    assert [e.origin for e in book.audit()] == [
        "box",
        "box: heartbeat stopped, holding the last limit",
        "box: heartbeat stopped 31 s, fallback",
        "box",
    ]


def test_a_box_without_a_watched_heartbeat_is_taken_as_it_reads() -> None:
    book = LimitBook()
    source = box(fallback=50.0, hold_s=30.0)
    for t in range(100):
        assert source.update(book, beat(30, 7), float(t)) is None
    assert in_force(book, 99.0) == 30.0


def test_a_raise_waits_for_the_counter_to_move_and_a_lowering_does_not() -> None:
    book = LimitBook()
    source = GridOperatorInput(
        100.0,
        silent_after_s=5.0,
        hold_last_s=30.0,
        fallback_percent=None,
        origin="box",
        heartbeat_s=10.0,
    )
    source.update(book, beat(30, 1), 0.0)
    source.update(book, beat(80, 1), 1.0)  # a raise with the counter where it was
    source.update(book, beat(80, None), 2.0)  # a missed counter does not confirm it
    assert in_force(book, 2.0) == 30.0
    source.update(book, beat(80, 2), 3.0)
    assert in_force(book, 3.0) == 80.0
    source.update(book, beat(20, 2), 4.0)  # a lowering at once
    assert in_force(book, 4.0) == 20.0
