"""The leader lease's rules, sans-IO (no NATS, time as input)."""

from __future__ import annotations

from hubgate.cluster.lease import LeaderLease, LeaseRecord, LeaseTiming, Role, Write
from hubgate.control.authority import Held

TIMING = LeaseTiming(ttl_s=3.0, device_lease_s=4.0, clock_margin_s=0.5)


def leader(node: str = "a", at: float = 0.0) -> tuple[LeaderLease, int]:
    """A lease that took the absent key at `at` (revision 7)."""
    lease = LeaderLease(node, TIMING)
    lease.observe(0, None, at)
    write = lease.due(at)
    assert write == Write(0, LeaseRecord(node, 0))
    lease.wrote(write, 7, at)
    return lease, 7


def test_a_take_over_makes_its_revision_the_epoch_and_renewals_keep_it() -> None:
    lease, revision = leader()
    assert lease.epoch_now(0.1) == revision
    assert lease.due(0.5) is None  # not yet time to renew
    renewal = lease.due(TIMING.renew_every_s)
    assert renewal == Write(revision, LeaseRecord("a", revision))
    lease.wrote(renewal, 9, TIMING.renew_every_s)
    assert lease.epoch_now(TIMING.renew_every_s + TIMING.ttl_s - 0.01) == revision
    assert lease.epoch_now(TIMING.renew_every_s + TIMING.ttl_s) is None  # its own clock


def test_a_standby_waits_lease_margin_and_device_leases_after_the_last_change() -> None:
    lease = LeaderLease("b", TIMING)
    lease.observe(5, LeaseRecord("a", 5).encode(), 10.0)
    lease.observe(5, LeaseRecord("a", 5).encode(), 20.0)  # unchanged: first sight counts
    assert lease.due(10.0 + TIMING.takeover_after_s - 0.01) is None
    assert lease.due(10.0 + TIMING.takeover_after_s) == Write(5, LeaseRecord("b", 0))
    lease.observe(6, LeaseRecord("a", 5).encode(), 18.0)  # a renewal: the wait starts again
    assert lease.due(18.0 + TIMING.takeover_after_s - 0.01) is None


def test_a_release_by_another_is_taken_at_once_but_not_by_the_releaser() -> None:
    a, revision = leader("a")
    handover = a.release()
    assert handover == Write(revision, LeaseRecord("a", revision, released=True))
    assert a.epoch_now(0.2) is None  # stops commanding before the write goes out
    a.wrote(handover, 8, 0.2)
    assert a.due(0.3) is None
    assert a.due(0.2 + TIMING.takeover_after_s - 0.01) is None
    b = LeaderLease("b", TIMING)
    b.observe(8, handover.record.encode(), 0.3)
    assert b.due(0.3) == Write(8, LeaseRecord("b", 0))


def test_a_newer_epoch_or_a_refused_renewal_steps_the_leader_down() -> None:
    lease, _revision = leader()
    lease.observe(12, LeaseRecord("b", 12).encode(), 1.0)
    assert lease.role is Role.STANDBY
    assert lease.epoch_now(1.0) is None
    again, _ = leader()
    again.refused()
    assert again.epoch_now(0.5) is None
    assert again.due(0.5) is None  # reads the key again before it writes


def test_a_write_whose_answer_was_lost_is_recognised_when_read_back() -> None:
    lease = LeaderLease("b", TIMING)
    lease.observe(5, LeaseRecord("a", 5).encode(), 0.0)
    write = lease.due(TIMING.takeover_after_s)
    assert write is not None
    lease.sending(write, 8.0)
    lease.observe(6, LeaseRecord("b", 0).encode(), 8.5)  # the answer was lost, not the write
    assert lease.epoch_now(8.6) == 6
    assert lease.epoch_now(8.0 + TIMING.ttl_s) is None  # valid from when it was sent


def test_a_refusal_after_an_unanswered_renewal_is_read_before_the_leader_steps_down() -> None:
    """A renewal the cluster took after its wait ran out makes the next renewal (against
    the revision before it) refused: by the leader's own hand. It reads the key and goes on;
    its lease counts from the first unanswered renewal."""
    lease, revision = leader()
    first = lease.due(1.0)
    assert first is not None
    lease.sending(first, 1.0)  # no answer in time
    second = lease.due(1.2)
    assert second == first  # against the same revision
    lease.sending(second, 1.2)
    lease.refused()  # the first one had been taken meanwhile
    assert lease.epoch_now(1.3) == revision  # still within the lease it holds
    assert lease.due(1.3) is None  # reads the key before it writes again
    lease.observe(8, LeaseRecord("a", revision).encode(), 1.4)
    assert lease.role is Role.LEADER
    assert lease.epoch_now(1.0 + TIMING.ttl_s - 0.01) == revision
    assert lease.epoch_now(1.0 + TIMING.ttl_s) is None  # from the first one's sending

    other, revision = leader()
    lost = other.due(1.0)
    assert lost is not None
    other.sending(lost, 1.0)
    other.sending(lost, 1.2)
    other.refused()
    other.observe(8, LeaseRecord("b", 8).encode(), 1.4)  # not its own: someone took over
    assert other.epoch_now(1.4) is None
    assert other.due(1.4) is None


def test_a_take_over_taken_after_its_wait_ran_out_is_recognised_after_a_refusal() -> None:
    lease = LeaderLease("b", TIMING)
    lease.observe(5, LeaseRecord("a", 5).encode(), 0.0)
    takeover = lease.due(TIMING.takeover_after_s)
    assert takeover is not None
    lease.sending(takeover, 8.0)  # no answer in time
    lease.sending(takeover, 8.3)
    lease.refused()  # the first one was taken
    lease.observe(6, LeaseRecord("b", 0).encode(), 8.5)
    assert lease.epoch_now(8.6) == 6
    assert lease.epoch_now(8.0 + TIMING.ttl_s) is None  # from the first one's sending


def test_a_renewal_taken_after_the_release_went_out_does_not_lead_again() -> None:
    """The release after a renewal whose answer was lost is refused (the renewal was
    taken first): read back, the renewal is its own, and the release goes again against
    it; it commands nothing meanwhile and writes nothing else."""
    lease, revision = leader()
    renewal = lease.due(1.0)
    assert renewal is not None
    lease.sending(renewal, 1.0)  # no answer in time
    handover = lease.release()
    assert handover == Write(revision, LeaseRecord("a", revision, released=True))
    lease.sending(handover, 1.2)
    lease.refused()  # the renewal was taken first
    assert lease.release() is None  # read the key first
    lease.observe(8, renewal.record.encode(), 1.3)
    assert lease.epoch_now(1.3) is None
    assert lease.due(1.3) is None  # nothing but the release
    again = lease.release()
    assert again == Write(8, LeaseRecord("a", revision, released=True))
    lease.wrote(again, 9, 1.4)
    assert lease.handed_over
    assert lease.role is Role.STANDBY
    assert lease.due(1.5) is None  # a standby like any other, waiting for the key


def test_a_renewals_answer_after_the_release_began_keeps_it_from_commanding() -> None:
    """A renewal answered after `release` (its answer was in flight): the gateway still
    commands nothing, renews no more, and releases against the renewal's revision."""
    lease, revision = leader()
    renewal = lease.due(1.0)
    assert renewal is not None
    lease.sending(renewal, 1.0)
    assert lease.release() is not None  # resigned: the write waits for the renewal's answer
    lease.wrote(renewal, 8, 1.0)
    assert lease.epoch_now(1.1) is None
    assert lease.due(1.0 + TIMING.renew_every_s) is None
    assert lease.release() == Write(8, LeaseRecord("a", revision, released=True))


def test_a_release_refused_by_anothers_write_hands_nothing_over() -> None:
    lease, _revision = leader()
    handover = lease.release()
    assert handover is not None
    lease.sending(handover, 1.0)
    lease.refused()  # another gateway wrote the key (its lease had run out here)
    assert lease.role is Role.STANDBY
    assert not lease.handed_over
    assert lease.release() is None


def test_a_value_that_is_not_a_lease_can_be_taken() -> None:
    assert LeaseRecord.decode(b"not json", 3) == LeaseRecord("", 3, released=True)


def test_renewals_and_the_release_carry_the_failsafes_a_successor_inherits() -> None:
    a, _ = leader("a")
    a.failsafes = {"cp-1#1": 6.0, "cp-3#1": 4.5}
    renewal = a.due(TIMING.renew_every_s)
    assert renewal is not None
    assert LeaseRecord.decode(renewal.record.encode(), 9).failsafes == a.failsafes
    a.wrote(renewal, 9, TIMING.renew_every_s)
    b = LeaderLease("b", TIMING)
    b.observe(9, renewal.record.encode(), 1.0)  # then a goes silent
    takeover = b.due(1.0 + TIMING.takeover_after_s)
    assert takeover == Write(9, LeaseRecord("b", 0))  # b knows none of its own yet
    b.wrote(takeover, 10, 1.0 + TIMING.takeover_after_s)
    assert b.inheritance.failsafes == {"cp-1#1": 6.0, "cp-3#1": 4.5}
    assert b.inheritance.handed_over is False  # the device leases ran out meanwhile

    c, _ = leader("c")
    c.failsafes, c.held = {"cp-1#1": 6.0}, {"cp-1#1": Held(14.5, (14.0, 13.8, 0.0))}
    assert "held" not in c.due(TIMING.renew_every_s).record.encode().decode()  # type: ignore[union-attr]
    handover = c.release()
    assert handover is not None
    c.wrote(handover, 8, 0.2)
    assert c.failsafes == {}  # a standby bequeaths nothing
    d = LeaderLease("d", TIMING)
    d.observe(8, handover.record.encode(), 0.3)
    takeover = d.due(0.3)
    assert takeover is not None
    d.wrote(takeover, 11, 0.3)
    assert d.inheritance.failsafes == {"cp-1#1": 6.0}
    assert d.inheritance.handed_over is True  # its leases may still run...
    # ...at the current last commanded, drawing what a last read
    assert d.inheritance.held == {"cp-1#1": Held(14.5, (14.0, 13.8, 0.0))}


def test_a_record_without_failsafes_leaves_nothing_to_inherit() -> None:
    older = b'{"holder":"a","epoch":5,"released":false}'  # as written before they existed
    assert LeaseRecord.decode(older, 6) == LeaseRecord("a", 5)
    b = LeaderLease("b", TIMING)
    b.observe(6, older, 0.0)
    takeover = b.due(TIMING.takeover_after_s)
    assert takeover is not None
    b.wrote(takeover, 7, TIMING.takeover_after_s)
    assert b.inheritance.failsafes == {}


def test_a_record_with_failsafes_but_not_their_currents_leaves_nothing_to_inherit() -> None:
    """Before each carried its current: without it the successor cannot tell what the
    charger falls back to, so it counts on none (reserved at its maximum until verified)."""
    older = b'{"holder":"a","epoch":5,"released":true,"failsafes":["cp-1#1"]}'
    assert LeaseRecord.decode(older, 6).inheritance.failsafes == {}


def test_a_standby_takes_the_chargers_once_the_leader_commands_no_more() -> None:
    """The successor takes the chargers' connections (commanding nothing yet) once the
    leader's lease is over by the leader's own clock (lease + margin after the last change
    it saw), or at a hand-over; never while the leader renews, never for its own record."""
    b = LeaderLease("b", TIMING)
    assert not b.successor(0.0)  # nothing read yet
    b.observe(5, LeaseRecord("a", 5).encode(), 10.0)
    silent = 10.0 + TIMING.ttl_s + TIMING.clock_margin_s
    assert not b.successor(silent - 0.01)
    assert b.successor(silent)
    assert b.due(silent) is None  # the take-over still waits for the device leases
    b.observe(6, LeaseRecord("a", 5).encode(), 14.0)  # a renewed after all
    assert not b.successor(silent)
    b.observe(7, LeaseRecord("a", 5, released=True).encode(), 14.5)
    assert b.successor(14.5)
    a, _ = leader("a")
    assert not a.successor(0.1)  # it leads
    assert a.due(100.0) is None  # cut off, unrenewed: its lease ran out on its own clock
    assert a.role is Role.STANDBY
    assert not a.successor(100.0)  # its own record: it never keeps the chargers


def test_a_standby_wakes_when_it_takes_the_chargers_and_when_it_takes_over() -> None:
    """Between reads, the moments a standby's next step may not wait for: taking the
    chargers (lease + margin after the last change it saw), then the take-over (+ the
    device leases); nothing for a leader, a release (taken at the next read) or its own
    record."""
    b = LeaderLease("b", TIMING)
    assert b.wake_at(0.0) is None  # nothing read yet
    b.observe(5, LeaseRecord("a", 5).encode(), 10.0)
    silent = 10.0 + TIMING.ttl_s + TIMING.clock_margin_s
    assert b.wake_at(10.0) == silent
    assert b.wake_at(silent) == 10.0 + TIMING.takeover_after_s
    assert b.due(10.0 + TIMING.takeover_after_s) is not None
    assert b.wake_at(10.0 + TIMING.takeover_after_s) is None  # due now, at this step
    b.observe(6, LeaseRecord("a", 5, released=True).encode(), 12.0)
    assert b.wake_at(12.0) is None
    a, _ = leader("a")
    assert a.wake_at(0.1) is None
    restarted = LeaderLease("a", TIMING)
    restarted.observe(8, LeaseRecord("a", 7).encode(), 0.2)
    assert restarted.wake_at(0.3) is None  # its own record: its next read will do


def test_a_leader_whose_lease_ran_out_on_a_late_renewal_leads_on_when_it_reads_it_back() -> None:
    """A renewal answered too late for the leader's clock (a loaded machine, a stream
    changing leader): its lease runs out and it commands nothing, but the renewal was
    taken. Read back, it leads on under the same epoch, valid from the renewal's sending,
    instead of watching its own record for lease + margin + device leases (no leader at
    all meanwhile: the standby waits as long after seeing that renewal)."""
    lease, revision = leader()
    renewal = lease.due(1.0)
    assert renewal is not None
    lease.sending(renewal, 1.0)  # no answer in time
    assert lease.due(TIMING.ttl_s) is None  # its lease ran out: it steps down
    assert lease.role is Role.STANDBY
    lease.observe(8, renewal.record.encode(), 3.2)
    assert lease.epoch_now(3.2) == revision
    assert lease.epoch_now(1.0 + TIMING.ttl_s) is None  # from the renewal's sending
    assert lease.due(3.2) == Write(8, LeaseRecord("a", revision))  # and renews it
