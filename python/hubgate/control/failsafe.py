"""Failsafe watches: what the controller may assume when a device goes quiet.

- A meter that is lost or stale makes its node's budget drop to a degraded
  share of the node's limit (not zero, not unlimited). It recovers only after
  the meter has been fresh again for a while (hysteresis), so a flapping
  meter does not make the budget flap.
- A charger that cannot be reached is assumed to draw what it was last
  commanded or, more conservatively, its maximum; the others are reduced to
  match. When it comes back its own failsafe settings must be verified
  before it is trusted again.

Time is an input: every method takes `now` (monotonic seconds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum


class MeterHealth(StrEnum):
    """The state of a meter as the controller sees it."""

    NEVER_SEEN = "never-seen"
    FRESH = "fresh"
    LOST = "lost"
    RECOVERING = "recovering"


@dataclass
class MeterWatch:
    """Freshness of one meter and the budget share its node may use."""

    stale_after_s: float
    recover_after_s: float
    degraded_share: float
    last_sample_at: float | None = None
    fresh_since: float | None = None
    _degraded: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.degraded_share <= 1:
            raise ValueError(f"degraded_share must be in (0, 1], got {self.degraded_share}")

    def sample(self, now: float) -> None:
        """A reading arrived at `now`. The first one is trusted at once: the hysteresis
        guards against a meter that was lost and flaps, and this one was never lost."""
        if self.last_sample_at is None:
            self._degraded = False
        if self.last_sample_at is None or now - self.last_sample_at > self.stale_after_s:
            self.fresh_since = now
        self.last_sample_at = now

    def health(self, now: float) -> MeterHealth:
        """NEVER_SEEN, FRESH, LOST (stale) or RECOVERING (fresh, still in hysteresis)."""
        self._update(now)
        if self.last_sample_at is None:
            return MeterHealth.NEVER_SEEN
        if now - self.last_sample_at > self.stale_after_s:
            return MeterHealth.LOST
        return MeterHealth.RECOVERING if self._degraded else MeterHealth.FRESH

    def budget_share(self, now: float) -> float:
        """1.0 while the meter is trusted, the degraded share otherwise."""
        self._update(now)
        return self.degraded_share if self._degraded else 1.0

    def _update(self, now: float) -> None:
        if self.last_sample_at is None or now - self.last_sample_at > self.stale_after_s:
            self._degraded = True
        elif (
            self._degraded
            and self.fresh_since is not None
            and now - self.fresh_since >= self.recover_after_s
        ):
            self._degraded = False


RESTART_S = 10.0
"""No charger restarts (and may have lost its failsafe settings) in less than this: a gap
this short between two answers, in which no read failed, is the loop's own (a stalled cycle
on a busy machine), not the charger's, and needs no verification."""


class AssumeDraw(StrEnum):
    """What an unreachable charger is assumed to draw.

    LAST_COMMAND: the larger of its last acknowledged command and its failsafe current
    (it holds the one until its own watchdog or lease brings it to the other), once its
    failsafe settings were verified; its maximum otherwise. MAXIMUM: always its maximum.
    """

    LAST_COMMAND = "last-command"
    MAXIMUM = "maximum"


@dataclass
class ChargerWatch:
    """Reachability of one charger and the draw to assume while it is unreachable."""

    unreachable_after_s: float
    maximum_a: float
    assume: AssumeDraw = AssumeDraw.MAXIMUM
    last_ok_at: float | None = None
    last_command_a: float | None = None
    needs_verification: bool = True
    inherited_from: float | None = None
    """From when a charger this gateway has not verified yet falls back to the failsafe
    its previous leader installed and verified (`control.authority.Inheritance`); until it
    is verified here, it is assumed at its failsafe current from then on, not at its
    maximum. A charger keeps its stored charging profiles while offline (OCPP 1.6
    §3.13.6; 2.0.1 use cases K06/K07): when the leader's lease profile has lapsed, its
    permanent failsafe profile is what limits it."""
    inherited_failsafe_a: float = 0.0
    """The failsafe current its previous leader passed on with it (`Inheritance.failsafes`):
    what its stored failsafe profile falls back to (`Verification.fallback_a`)."""
    inherited_a: float | None = None
    """Until `inherited_from`, after a hand-over: the current its previous leader last
    commanded it (its lease profile holds it there until it lapses); None: its maximum."""
    inherited_draw_a: tuple[float, float, float] | None = None
    """After a hand-over, until `inherited_draw_until`: the draw its previous leader last
    read (`inherited_draw`)."""
    inherited_draw_until: float = -math.inf
    """When its previous leader's lease lapses after a hand-over (`inherited_from` then):
    its last reading of the draw counts until this gateway measures it, at most until
    then, verified here or not (the charger's first values come after its status)."""

    missed_since_ok: bool = False
    """A read failed since the last request that succeeded."""

    def ok(self, now: float) -> None:
        """A request to the charger succeeded at `now`; after a gap in which a read failed
        (or one of `RESTART_S`: the loop itself did not ask, stalled), verify it again."""
        if self.last_ok_at is not None:
            gap = now - self.last_ok_at
            if gap > self.unreachable_after_s and (self.missed_since_ok or gap > RESTART_S):
                self.needs_verification = True
        self.last_ok_at = now
        self.missed_since_ok = False

    def missed(self) -> None:
        """A read of the charger failed or timed out."""
        self.missed_since_ok = True

    def commanded(self, setpoint_a: float) -> None:
        """A setpoint was acknowledged by the charger."""
        self.last_command_a = setpoint_a

    def verified(self) -> None:
        """Its own failsafe settings (timeout, failsafe current) were read back and match
        (what it inherited no longer counts: this gateway's own commands do; until one is
        acknowledged, the current its previous leader last commanded it is its last
        command: that leader's lease may hold it there, and this gateway's first setpoint
        may be cut short); the draw it last read does until measured here
        (`inherited_draw`)."""
        self.needs_verification = False
        if self.inherited_from is not None:
            self.last_command_a = self.inherited_a
        self.inherited_from = self.inherited_a = None
        self.inherited_failsafe_a = 0.0

    def inherited_draw(self, now: float) -> tuple[float, float, float] | None:
        """The draw its previous leader last read, until its lease lapses (then its
        failsafe current is all it is counted at): a charger not measured here yet, whose
        draw the meters show while it redials and reports its status."""
        return self.inherited_draw_a if now < self.inherited_draw_until else None

    def reachable(self, now: float) -> bool:
        """Whether the charger answered recently enough at `now`."""
        return self.last_ok_at is not None and now - self.last_ok_at <= self.unreachable_after_s

    def assumed_draw_a(self, now: float, failsafe_a: float) -> float | None:
        """The draw to assume while unreachable, or None when it is reachable; `failsafe_a`:
        the current its own watchdog or lease falls back to (`ConnectorRuntime.failsafe_a`,
        verified at connect)."""
        if self.reachable(now):
            return None
        if self.assume is AssumeDraw.MAXIMUM:
            return self.maximum_a
        if self.needs_verification:
            if self.inherited_from is not None and now >= self.inherited_from:
                return min(failsafe_a, self.maximum_a)
            if self.inherited_from is not None and self.inherited_a is not None:
                return min(max(self.inherited_a, failsafe_a), self.maximum_a)
            return self.maximum_a
        if self.last_command_a is not None:
            return min(max(self.last_command_a, failsafe_a), self.maximum_a)
        return self.maximum_a
