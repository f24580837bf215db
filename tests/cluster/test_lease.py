"""The leader lease's rules, sans-IO (no NATS, time as input)."""

from __future__ import annotations

from hubgate.cluster.lease import LeaderLease, LeaseRecord, LeaseTiming, Role, Write

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


def test_a_value_that_is_not_a_lease_can_be_taken() -> None:
    assert LeaseRecord.decode(b"not json", 3) == LeaseRecord("", 3, released=True)
