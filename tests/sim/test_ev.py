"""The EV model: late to follow a new limit, 6 A minimum, its own maximum, taper, full."""

from __future__ import annotations

import pytest

from hubgate.sim.ev import Ev


def make_ev(**overrides: float) -> Ev:
    values: dict[str, float] = {
        "capacity_kwh": 60.0,
        "max_current_a": 32.0,
        "phases": 3,
        "reaction_s": 4.0,
        "soc": 0.2,
        "target_soc": 0.9,
        "taper_from_soc": 0.8,
        "departs_at": 1e9,
    }
    values.update(overrides)
    return Ev(**values)  # type: ignore[arg-type]


def draws(ev: Ev, offers: dict[int, float], seconds: int) -> list[float]:
    """Draw per second, offering `offers[t]` from second t on."""
    out = []
    for t in range(seconds):
        if t in offers:
            ev.offer(offers[t], float(t))
        out.append(ev.step(float(t), 1.0, 230.0))
    return out


def test_follows_a_new_limit_after_its_reaction_delay() -> None:
    ev = make_ev(reaction_s=4.0)
    got = draws(ev, {0: 16.0, 10: 8.0, 20: 20.0}, 30)
    assert got[:4] == [0.0] * 4
    assert got[4:14] == [16.0] * 10
    assert got[14:24] == [8.0] * 10
    assert got[24:] == [20.0] * 6


def test_a_change_within_the_delay_is_followed_in_order() -> None:
    ev = make_ev(reaction_s=5.0)
    got = draws(ev, {0: 16.0, 2: 10.0}, 10)
    assert got == [0.0] * 5 + [16.0] * 2 + [10.0] * 3


def test_pauses_below_6_a_and_resumes() -> None:
    ev = make_ev(reaction_s=3.0)
    got = draws(ev, {0: 10.0, 5: 5.9, 12: 6.0}, 20)
    assert got[3:8] == [10.0] * 5
    assert got[8:15] == [0.0] * 7
    assert got[15:] == [6.0] * 5


def test_never_draws_above_its_own_maximum() -> None:
    ev = make_ev(max_current_a=16.0, reaction_s=0.0)
    assert draws(ev, {0: 32.0}, 3) == [16.0] * 3


def test_tapers_linearly_above_the_taper_soc() -> None:
    ev = make_ev(soc=0.9, target_soc=1.0, taper_from_soc=0.8, reaction_s=0.0)
    assert ev.taper_a() == pytest.approx(16.0)
    assert draws(ev, {0: 32.0}, 1)[0] == pytest.approx(16.0)
    ev.soc = 0.5
    assert ev.taper_a() == 32.0


def test_stops_when_full() -> None:
    ev = make_ev(soc=0.9, target_soc=0.9, reaction_s=0.0)
    assert draws(ev, {0: 32.0}, 3) == [0.0] * 3


def test_energy_and_soc_follow_the_draw() -> None:
    ev = make_ev(capacity_kwh=100.0, soc=0.1, reaction_s=0.0, phases=1)
    draws(ev, {0: 16.0}, 3600)
    kwh = 16.0 * 230.0 / 1000.0  # one phase, one hour
    assert ev.energy_kwh == pytest.approx(kwh)
    assert ev.soc == pytest.approx(0.1 + kwh / 100.0)
