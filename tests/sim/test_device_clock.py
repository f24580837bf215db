"""A simulated device's clock: the wall clock's rate while a master is connected, the
simulation's while none is (`hubgate.sim.device_clock`)."""

from __future__ import annotations

from hubgate.sim.device_clock import DeviceClock


def _clock() -> DeviceClock:
    return DeviceClock(lambda: 0.0, lambda: False, wall=lambda: 1000.0)


def test_without_a_master_it_runs_on_simulated_time() -> None:
    clock = _clock()
    assert clock.advance(40.0, 1001.0, linked=False) == 40.0
    assert clock.advance(100.0, 1002.0, linked=False) == 100.0


def test_with_a_master_connected_it_runs_at_the_wall_clock_rate() -> None:
    clock = _clock()
    assert clock.advance(10.0, 1002.0, linked=True) == 10.0  # simulated until the link is seen
    assert clock.advance(250.0, 1027.0, linked=True) == 35.0  # 25 wall s, whatever the speed
    assert clock.advance(400.0, 1062.0, linked=True) == 70.0


def test_when_the_master_goes_it_runs_on_from_where_it_was_at_the_simulations_rate() -> None:
    clock = _clock()
    clock.advance(10.0, 1000.0, linked=True)
    assert clock.advance(90.0, 1020.0, linked=False) == 30.0  # the link ended here
    assert clock.advance(150.0, 1021.0, linked=False) == 90.0  # 60 simulated s later
    assert clock.advance(160.0, 1500.0, linked=True) == 100.0  # a master is back
    assert clock.advance(900.0, 1505.0, linked=True) == 105.0


def test_it_never_runs_backwards() -> None:
    clock = _clock()
    clock.advance(10.0, 1000.0, linked=True)
    assert clock.advance(5.0, 999.0, linked=True) == 10.0
