"""The leader lease, sans-IO: what a gateway knows of the lease key and what it writes next.

The lease is one key in a JetStream key-value bucket (replicated), written only with
compare-and-set on its revision. Its value names the holder and the **epoch**: the
revision of the write that took the lease (a take-over writes epoch 0, read back as
its own revision; renewals carry the epoch on). The epoch is the fencing token: a
gateway commands only under the epoch it holds, while its lease is valid on its own
clock, and stops as soon as it sees another epoch.

Timing, all on each gateway's own monotonic clock (no shared clock is assumed):

- the leader renews every `ttl_s / 3` and may command until `ttl_s` after it *sent*
  its last successful renewal (`valid_until`);
- a standby takes a lease it has seen unchanged for `ttl_s + clock_margin_s +
  device_lease_s`: by then the old leader has stopped commanding (its `valid_until`
  passed: it sent that renewal before the standby saw it) and every device-side lease
  it set (Modbus watchdog, OCPP profile validTo) has run out;
- a lease another gateway released (explicit hand-over) and a missing key are taken
  at once; a gateway that released the lease waits like for any other. A release stops
  the leader commanding at once (`resigned`) but goes out only after a write of its own
  still in flight is answered (else that renewal, taken first, makes the release refused
  and its answer made the gateway lead again), against the revision that write made.

`LeaderLease.due(now)` says what to write; `wrote`, `refused` and `observe` take what
came of writes and reads. `epoch_now(now)` is what the control loop asks every cycle
and before every command.

The leader's renewals and its release also carry what a successor may count on: the
connectors whose own failsafe it verified (`failsafes`, from the control loop), and the
release how it left each of them (`held`: the current their lease profiles hold them at
until they lapse, and their last draw); a gateway that takes the lease over keeps the last record it
saw as its `inheritance`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

from hubgate.control.authority import NOTHING_INHERITED, Held, Inheritance


class Role(StrEnum):
    """A gateway's part in the cluster."""

    STANDBY = "standby"
    LEADER = "leader"


@dataclass(frozen=True)
class LeaseRecord:
    """The lease key's value."""

    holder: str
    epoch: int
    """The revision of the take-over write; 0 in the take-over write itself."""
    released: bool = False
    failsafes: Mapping[str, float] = field(default_factory=dict, hash=False)
    """The connectors whose failsafe the holder verified, with its current
    (`Inheritance.failsafes`)."""
    held: Mapping[str, Held] = field(default_factory=dict, hash=False)
    """In a release: each of them as the holder left it (`Inheritance.held`)."""

    def encode(self) -> bytes:
        """The key's bytes."""
        body: dict[str, object] = {
            "holder": self.holder,
            "epoch": self.epoch,
            "released": self.released,
        }
        if self.failsafes:
            body["failsafes"] = {name: round(a, 2) for name, a in sorted(self.failsafes.items())}
        if self.held:
            body["held"] = {
                name: [round(a, 2) for a in (held.current_a, *held.draw_a)]
                for name, held in sorted(self.held.items())
            }
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes, revision: int) -> LeaseRecord:
        """A value read at `revision` (a take-over's epoch 0 becomes `revision`); a value
        that is not a lease record is a released lease of nobody, so it can be taken."""
        try:
            body = json.loads(data)
            holder, epoch = str(body["holder"]), int(body["epoch"])
            released = bool(body.get("released", False))
            failsafes = _failsafes(body.get("failsafes", {}))
            held = {str(name): _held(entry) for name, entry in body.get("held", {}).items()}
        except (ValueError, KeyError, TypeError, AttributeError):
            return cls("", revision, released=True)
        return cls(holder, epoch or revision, released, failsafes, held)

    @property
    def inheritance(self) -> Inheritance:
        """What a gateway that takes the lease over from this record inherits."""
        return Inheritance(self.failsafes, handed_over=self.released, held=self.held)


@dataclass(frozen=True)
class LeaseTiming:
    """How long a lease lasts and what a standby adds before it takes one over."""

    ttl_s: float
    device_lease_s: float
    """The longest device-side lease the leader sets (Modbus watchdog, OCPP validTo)."""
    clock_margin_s: float = 0.0
    """For two monotonic clocks that run at slightly different rates, and for the
    leader's last cycle in flight."""

    @property
    def renew_every_s(self) -> float:
        """How often the leader renews."""
        return self.ttl_s / 3

    @property
    def takeover_after_s(self) -> float:
        """How long a standby waits after it last saw the lease change."""
        return self.ttl_s + self.clock_margin_s + self.device_lease_s


@dataclass(frozen=True)
class Write:
    """A compare-and-set write of the lease key: `last` is the revision it must still
    have (0: the key must not exist)."""

    last: int
    record: LeaseRecord


class LeaderLease:
    """One gateway's view of the lease and its decisions (see the module docstring)."""

    def __init__(self, node: str, timing: LeaseTiming) -> None:
        self.node = node
        self.timing = timing
        self.role = Role.STANDBY
        self.epoch: int | None = None
        """The epoch held while leader."""
        self.valid_until = float("-inf")
        self.revision: int | None = None
        """The key's last known revision (None: not read yet; 0: no key)."""
        self.record: LeaseRecord | None = None
        self.seen_at = float("-inf")
        """When this gateway first saw `revision`."""
        self._renewed_at = float("-inf")
        self._unanswered: list[tuple[Write, float]] = []
        """Writes sent since the last known revision whose answer has not come, each with
        when it was sent: the earliest of each kind (take-over, renewal, release). One of
        them may still be taken, after its wait ran out (`observe` recognises it)."""
        self._last_sent: tuple[Write, float] | None = None
        self.failsafes: Mapping[str, float] = {}
        """As leader: what the next renewal or the release carries (`LeaseRecord.failsafes`)."""
        self.held: Mapping[str, Held] = {}
        """As leader: what the release carries (`LeaseRecord.held`)."""
        self.inheritance = NOTHING_INHERITED
        """As a new leader: the record before its take-over (`LeaseRecord.inheritance`)."""
        self.resigned = False
        """Since `release`, until the release is written or another writes the key: it
        commands nothing and writes nothing but the release."""
        self.handed_over = False
        """Whether its last release was written (until it takes the lease again)."""

    # -- what the control loop asks -----------------------------------------------------

    def epoch_now(self, now: float) -> int | None:
        """The epoch this gateway may command under at `now`, None when it may not."""
        if self.role is Role.LEADER and not self.resigned and now < self.valid_until:
            return self.epoch
        return None

    def holds(self, epoch: int, now: float) -> bool:
        """Whether a command under `epoch` may go out at `now`."""
        return self.epoch_now(now) == epoch

    def successor(self, now: float) -> bool:
        """Whether this standby takes the chargers' connections at `now` (it commands
        nothing until it leads): the leader it watches handed over, or has been silent
        for `ttl_s + clock_margin_s`, so it commands no more by its own clock (the
        take-over itself also waits for the device leases: `due`). Never for this
        gateway's own record (a leader cut off from the cluster must not keep them)."""
        if self.role is Role.LEADER or self.revision is None:
            return False
        record = self.record
        if record is None:
            return True  # no lease: taken at the next write
        if record.holder == self.node:
            return False
        silent_s = self.timing.ttl_s + self.timing.clock_margin_s
        return record.released or now - self.seen_at >= silent_s

    def wake_at(self, now: float) -> float | None:
        """The next moment after `now` at which this standby's step changes something
        (it takes the chargers, or takes over a silent leader), so that it need not wait
        for its next read; None when no such moment is ahead."""
        record = self.record
        if self.role is Role.LEADER or record is None or record.released:
            return None
        if record.holder == self.node:
            return None
        timing = self.timing
        moments = (timing.ttl_s + timing.clock_margin_s, timing.takeover_after_s)
        return min((m for s in moments if (m := self.seen_at + s) > now), default=None)

    # -- what to write --------------------------------------------------------------------

    def due(self, now: float) -> Write | None:
        """The write to make now: a renewal, a take-over, or nothing."""
        if self.revision is None or self.resigned:
            return None  # read first, or only the release goes out
        if self.role is Role.LEADER:
            if now >= self.valid_until:
                self._step_down()
                return None
            if now - self._renewed_at >= self.timing.renew_every_s:
                assert self.epoch is not None
                return Write(self.revision, self._record())
            return None
        record = self.record
        if (
            record is None
            or (record.released and record.holder != self.node)
            or now - self.seen_at >= self.timing.takeover_after_s
        ):
            return Write(self.revision, LeaseRecord(self.node, 0))
        return None

    def release(self) -> Write | None:
        """Hand over: stop commanding now; the write that tells the standby, against the
        key's last known revision (None when this gateway does not lead, or must read the
        key first: after a refusal, its own renewal taken meanwhile is recognised when
        read back, and the release asked again goes against it)."""
        if self.role is not Role.LEADER:
            return None
        self.resigned = True
        if self.revision is None:
            return None
        return Write(self.revision, self._record(released=True))

    def _record(self, *, released: bool = False) -> LeaseRecord:
        assert self.epoch is not None
        held = self.held if released else {}
        return LeaseRecord(self.node, self.epoch, released, self.failsafes, held)

    # -- what came of it ----------------------------------------------------------------

    def sending(self, write: Write, now: float) -> None:
        """`write` goes out at `now` (its answer may be lost: `observe` recognises it)."""
        self._last_sent = (write, now)
        if all(_kind(w) != _kind(write) for w, _ in self._unanswered):
            self._unanswered.append((write, now))

    def wrote(self, write: Write, revision: int, sent_at: float) -> None:
        """The cluster took `write` as `revision`."""
        self._unanswered, self._last_sent = [], None
        self.revision, self.seen_at = revision, sent_at
        if write.record.released:
            self.record = write.record
            self._step_down()
            self.handed_over = True
            return
        if write.record.epoch == 0:  # a take-over: what the record before says
            self.handed_over = False
            previous = self.record
            self.inheritance = NOTHING_INHERITED if previous is None else previous.inheritance
        epoch = write.record.epoch or revision
        self.record = replace(write.record, epoch=epoch)
        self.role, self.epoch = Role.LEADER, epoch
        self._renewed_at = sent_at
        self.valid_until = sent_at + self.timing.ttl_s

    def refused(self) -> None:
        """The key had changed since the write's revision. Read it again before anything
        else; stop commanding at once when someone else wrote it.

        When an earlier write of this gateway's went unanswered, that write may be the
        change (taken after its wait ran out): then the read decides (`observe`), and a
        leader goes on meanwhile under the lease it holds, valid until `ttl_s` after it
        sent the last renewal it knows was taken. No standby takes over before that: it
        waits from when it saw the key's last change, made by a write sent later."""
        self._unanswered = [u for u in self._unanswered if u != self._last_sent]
        self._last_sent = None
        self.revision = None
        if not self._unanswered:
            self._step_down()

    def observe(self, revision: int, data: bytes | None, now: float) -> None:
        """The key as read at `now`: its revision and value (0 and None: no key)."""
        if revision == self.revision:
            return
        record = None if data is None else LeaseRecord.decode(data, revision)
        newer = revision > (self.revision or 0)
        if newer and record is not None:
            for write, sent_at in self._unanswered:
                if _taken(write, record, revision):  # ours, its answer lost
                    # a renewal too after its lease ran out by its own clock meanwhile: valid
                    # from its sending, as if answered (no standby takes over before lease +
                    # margin + device leases after seeing it); not waiting that out itself
                    self.wrote(write, revision, sent_at)
                    return
        if newer:  # another's write: none of ours can be taken now
            self._unanswered = []
        self.revision, self.record, self.seen_at = revision, record, now
        if self.role is Role.LEADER and (record is None or record.epoch != self.epoch):
            self._step_down()  # a newer epoch: someone else leads

    def _step_down(self) -> None:
        self.role, self.epoch, self.resigned = Role.STANDBY, None, False
        self.failsafes, self.held = {}, {}
        self.valid_until = float("-inf")


def _failsafes(entry: object) -> dict[str, float]:
    """`LeaseRecord.failsafes` as `encode` wrote it; a list of names (before each carried
    its current) leaves nothing to count on: those connectors are reserved at their
    maximum until verified, as if nothing had been passed on."""
    if not isinstance(entry, dict):
        return {}
    return {str(name): float(amps) for name, amps in entry.items()}


def _held(entry: list[float]) -> Held:
    """A `Held` as `LeaseRecord.encode` wrote it: the current, then the draw per phase."""
    current, *draw = (float(a) for a in entry)
    return Held(current, (draw[0], draw[1], draw[2]))


def _kind(write: Write) -> tuple[bool, bool]:
    """A take-over, a renewal or a release."""
    return write.record.released, write.record.epoch == 0


def _taken(write: Write, record: LeaseRecord, revision: int) -> bool:
    """Whether `record`, read at `revision`, is what `write` wrote (a take-over's epoch 0
    reads back as its revision)."""
    mine = write.record
    return (
        record.holder == mine.holder
        and record.released == mine.released
        and record.epoch == (mine.epoch or revision)
    )
