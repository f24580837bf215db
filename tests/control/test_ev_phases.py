"""Which phases an EV at a three-phase connector draws on (`ConnectorRuntime.observe_phases`):
a one-phase EV counts on its phase only once its readings show it for a while, and on all
three again as soon as it draws on another."""

from __future__ import annotations

from hubgate.control.connector_runtime import ONE_PHASE_SETTLE_S, ConnectorRuntime
from hubgate.control.failsafe import ChargerWatch
from hubgate.devices.model import Reading
from hubgate.profiles.model import Quantity

CURRENTS = (Quantity.CURRENT_L1, Quantity.CURRENT_L2, Quantity.CURRENT_L3)


def runtime() -> ConnectorRuntime:
    return ConnectorRuntime(ChargerWatch(unreachable_after_s=3.0, maximum_a=32.0))


def read(r: ConnectorRuntime, at: float, draw: tuple[float, float, float]) -> None:
    """A reading at `at` of `draw` on the grid phases (no rotation)."""
    r.reading = Reading(at=at, values=dict(zip(CURRENTS, draw, strict=True)))
    r.draw = draw


def test_one_phase_alone_for_the_settle_time_counts_there_only() -> None:
    r = runtime()
    read(r, 0.0, (0.0, 16.0, 0.0))
    assert not r.observe_phases(True)
    read(r, ONE_PHASE_SETTLE_S - 1, (0.0, 16.0, 0.2))  # noise on L3 is no draw
    assert not r.observe_phases(True)
    assert r.ev_phase is None
    read(r, ONE_PHASE_SETTLE_S, (0.0, 15.5, 0.0))
    assert r.observe_phases(True)
    assert r.ev_phase == 1
    read(r, ONE_PHASE_SETTLE_S + 1, (0.0, 0.0, 0.0))  # paused: says nothing
    assert not r.observe_phases(True)
    assert r.ev_phase == 1


def test_a_draw_on_another_phase_counts_all_three_again_at_once() -> None:
    r = runtime()
    read(r, 0.0, (16.0, 0.0, 0.0))
    r.observe_phases(True)
    read(r, ONE_PHASE_SETTLE_S, (16.0, 0.0, 0.0))
    assert r.observe_phases(True)
    read(r, ONE_PHASE_SETTLE_S + 1, (16.0, 6.0, 6.0))
    assert r.observe_phases(True)
    assert r.ev_phase is None
    read(r, ONE_PHASE_SETTLE_S + 2, (16.0, 0.0, 0.0))  # on one phase again: a new wait
    assert not r.observe_phases(True)
    assert r.ev_phase is None


def test_a_jump_to_another_single_phase_is_not_taken_on_trust() -> None:
    r = runtime()
    read(r, 0.0, (16.0, 0.0, 0.0))
    r.observe_phases(True)
    read(r, ONE_PHASE_SETTLE_S, (16.0, 0.0, 0.0))
    r.observe_phases(True)
    read(r, ONE_PHASE_SETTLE_S + 1, (0.0, 0.0, 16.0))
    assert r.observe_phases(True)
    assert r.ev_phase is None


def test_the_session_end_or_a_small_or_partial_reading() -> None:
    r = runtime()
    read(r, 0.0, (3.0, 0.0, 0.0))  # under ONE_PHASE_MIN_A: not seen
    r.observe_phases(True)
    read(r, ONE_PHASE_SETTLE_S, (16.0, 0.0, 0.0))
    assert not r.observe_phases(True)  # the wait starts now
    read(r, 2 * ONE_PHASE_SETTLE_S, (16.0, 0.0, 0.0))
    assert r.observe_phases(True)
    r.reading = Reading(at=30.0, values={Quantity.CURRENT_L1: 16.0})  # L2, L3 not read
    r.draw = (16.0, 0.0, 0.0)
    assert not r.observe_phases(True)
    assert r.observe_phases(False)  # unplugged
    assert (r.ev_phase, r.one_phase_seen) == (None, None)
