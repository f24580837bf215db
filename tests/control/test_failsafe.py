"""Failsafe watches: degraded budgets with hysteresis, assumed draw of lost chargers."""

from __future__ import annotations

import pytest

from hubgate.control.failsafe import (
    RESTART_S,
    AssumeDraw,
    ChargerWatch,
    MeterHealth,
    MeterWatch,
)


def meter() -> MeterWatch:
    return MeterWatch(stale_after_s=5, recover_after_s=10, degraded_share=0.5)


def test_meter_never_seen_is_degraded_and_trusted_from_its_first_reading() -> None:
    """No hysteresis at the start: nothing was lost (a started gateway ran on half its
    budget for 2 x meter_stale_s, pausing EVs for min_off_s)."""
    watch = meter()
    assert watch.health(0) is MeterHealth.NEVER_SEEN
    assert watch.budget_share(0) == 0.5
    watch.sample(1)
    assert watch.health(1) is MeterHealth.FRESH
    assert watch.budget_share(1) == 1.0
    assert watch.budget_share(6.5) == 0.5  # then lost as any meter
    watch.sample(7)
    assert watch.health(7) is MeterHealth.RECOVERING


def test_meter_lost_then_recovers_with_hysteresis() -> None:
    watch = meter()
    for t in range(12):
        watch.sample(t)
    assert watch.budget_share(11) == 1.0
    assert watch.health(11) is MeterHealth.FRESH
    # silent from t=11: still trusted up to 5 s, then lost
    assert watch.budget_share(16) == 1.0
    assert watch.budget_share(16.5) == 0.5
    assert watch.health(16.5) is MeterHealth.LOST
    # back at t=20: recovering for 10 s of continuous freshness
    for t in range(20, 30):
        watch.sample(t)
        assert watch.budget_share(t) == 0.5
    watch.sample(30)
    assert watch.budget_share(30) == 1.0


def test_flapping_meter_stays_degraded() -> None:
    watch = meter()
    t = 0.0
    for _ in range(10):
        for _ in range(4):  # 4 s of data, then 6 s of silence
            watch.sample(t)
            t += 1
        t += 6
        assert watch.budget_share(t) == 0.5


def test_degraded_share_must_be_positive() -> None:
    with pytest.raises(ValueError, match="degraded_share"):
        MeterWatch(stale_after_s=5, recover_after_s=10, degraded_share=0)


def test_unreachable_charger_assumed_at_maximum_by_default() -> None:
    watch = ChargerWatch(unreachable_after_s=3, maximum_a=32)
    watch.ok(0)
    watch.commanded(10)
    assert watch.assumed_draw_a(2, 6) is None
    assert watch.assumed_draw_a(4, 6) == 32


def test_unreachable_charger_assumed_at_last_command_or_failsafe_once_verified() -> None:
    watch = ChargerWatch(unreachable_after_s=3, maximum_a=32, assume=AssumeDraw.LAST_COMMAND)
    assert watch.assumed_draw_a(0, 6) == 32  # never commanded: maximum
    watch.ok(0)
    watch.commanded(10)
    assert watch.assumed_draw_a(10, 6) == 32  # its failsafe settings not verified: maximum
    watch.verified()
    assert watch.assumed_draw_a(10, 6) == 10  # it holds its last command...
    watch.commanded(0)
    assert watch.assumed_draw_a(10, 6) == 6  # ...or falls to its failsafe current, the larger


def test_reconnect_after_gap_requires_verification() -> None:
    watch = ChargerWatch(unreachable_after_s=3, maximum_a=32)
    watch.ok(0)
    watch.verified()
    watch.ok(2)
    assert not watch.needs_verification
    watch.missed()  # it stopped answering
    watch.ok(6)
    assert watch.needs_verification


def test_a_gap_the_loop_made_needs_no_verification_short_of_a_restart() -> None:
    """A loop stalled on a busy machine asked nobody for a while (0.45 s between 100 ms
    cycles): no read failed, and no charger restarts that fast."""
    watch = ChargerWatch(unreachable_after_s=0.3, maximum_a=32)
    watch.ok(0)
    watch.verified()
    watch.ok(0.75)
    assert not watch.needs_verification
    watch.missed()
    watch.ok(0.8)  # a miss within the window: not unreachable
    assert not watch.needs_verification
    watch.ok(0.8 + RESTART_S + 0.1)  # long enough to have restarted unseen
    assert watch.needs_verification


def test_an_inherited_failsafe_counts_from_its_lapse_until_the_charger_is_verified_here() -> None:
    """A new leader's charger that has not reconnected: held by the failsafe profile the
    old leader verified once that leader's lease profile lapsed (profiles stay in force
    offline: OCPP 1.6 §3.13.6, 2.0.1 K06/K07), its maximum before, or after a hand-over
    the current the old leader last commanded it (its lease profile)."""
    watch = ChargerWatch(
        unreachable_after_s=3,
        maximum_a=32,
        assume=AssumeDraw.LAST_COMMAND,
        inherited_from=40.0,
    )
    assert watch.assumed_draw_a(39.9, 6) == 32  # the old leader's lease may still run
    assert watch.assumed_draw_a(40.0, 6) == 6
    watch.ok(41)
    assert watch.assumed_draw_a(42, 6) is None  # back: its reading counts
    watch.verified()
    watch.commanded(20)
    assert watch.assumed_draw_a(50, 6) == 20  # this gateway's own command, not the inheritance
    maximum = ChargerWatch(3, 32, AssumeDraw.MAXIMUM, inherited_from=0.0)
    assert maximum.assumed_draw_a(10, 6) == 32  # the operator chose the maximum, always
    handed = ChargerWatch(
        3,
        32,
        AssumeDraw.LAST_COMMAND,
        inherited_from=40.0,
        inherited_a=14.0,
        inherited_draw_a=(13.0, 13.0, 12.5),
        inherited_draw_until=40.0,
    )
    assert handed.assumed_draw_a(39.9, 6) == 14  # after a hand-over: the old leader's last command
    assert handed.inherited_draw(39.9) == (13.0, 13.0, 12.5)  # and the draw it last read
    assert handed.assumed_draw_a(40.0, 6) == 6
    assert handed.inherited_draw(40.0) is None  # lapsed: its failsafe current is all
    handed.inherited_a = 2.0
    assert handed.assumed_draw_a(39.9, 6) == 6  # never below its failsafe current
    handed.verified()
    assert handed.inherited_a is None
    assert handed.inherited_draw(39.0) == (13.0, 13.0, 12.5)  # until measured here or lapsed
    assert handed.inherited_draw(40.0) is None
