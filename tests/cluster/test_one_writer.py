"""The failover tests' judge of "one writer at a time" (tests/support/ha_harness.py): each
command gets the epoch its sender held when it arrived, from the lease key's history, and
an old leader's command after the new one's first is caught."""

from __future__ import annotations

from typing import Any

from tests.support.ha_harness import LeaseWrite, epoch_held, epochs_in_turn, one_epoch_at_a_time

HISTORY = [
    LeaseWrite("a", 3, 3, stored=10.0),  # a takes the lease
    LeaseWrite("a", 3, 4, stored=10.7),  # and renews it
    LeaseWrite("b", 5, 5, stored=20.0),  # b takes it over
    LeaseWrite("a", 6, 6, stored=30.0),  # a's next process takes it back
]


def command(epoch: int | None) -> dict[str, Any]:
    return {"pid": 1, "epoch": epoch}


def test_a_command_carries_the_epoch_of_its_senders_last_lease_write() -> None:
    assert epoch_held(HISTORY, "a", since=0.0, at=9.9) is None  # not taken yet
    assert epoch_held(HISTORY, "a", since=0.0, at=10.0) == 3
    assert epoch_held(HISTORY, "a", since=0.0, at=25.0) == 3  # b leads: a's is stale
    assert epoch_held(HISTORY, "b", since=0.0, at=25.0) == 5
    assert epoch_held(HISTORY, "a", since=0.0, at=31.0) == 6
    # a process started after a's first took nothing until its own take-over
    assert epoch_held(HISTORY, "a", since=25.0, at=29.0) is None
    assert epoch_held(HISTORY, "a", since=25.0, at=30.0) == 6


def test_an_old_leaders_command_after_the_new_ones_first_is_caught() -> None:
    handed = [command(3), command(3), command(5), command(5), command(6)]
    assert epochs_in_turn(handed) == [3, 5, 6]
    assert one_epoch_at_a_time(handed)
    late = [command(3), command(5), command(3), command(5)]
    assert not one_epoch_at_a_time(late)
    assert not one_epoch_at_a_time([command(3), command(None)])  # a sender without a lease
