"""What the control loop knows of one connector between cycles (sans-IO): its reachability,
its latest reading and draw on the grid phases, what it was sent, what its EV is estimated
to take, and which phases its EV draws on."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from hubgate.control.decisions import Phases3
from hubgate.control.failsafe import ChargerWatch
from hubgate.devices.model import LimitCheck, Reading
from hubgate.profiles.model import IecState, Quantity

EV_HEADROOM_A = 2.0
"""An EV that draws less than offered keeps this much above its draw, so it can climb."""

EV_SETTLE_S = 10.0
"""How long an EV must draw well under its setpoint before that says what it wants (a raise
takes a while to show in its draw)."""

FOLLOWED_TOLERANCE_A = 0.25
"""An EV drawing at most this much above a lowered setpoint has followed it."""

WANTING_STATES = frozenset({IecState.B, IecState.C, IecState.D})

VERIFY_RETRY_S = 1.0
"""An unverified connector's failsafe settings are asked for again this long after the last
try ended without verifying them (refused, failed, or cut short at the command deadline),
not every cycle: at 0.1 s cycles a gateway starting 500 connectors spent 16 % of its CPU
re-sending them. Each such try in a row doubles the wait, up to `VERIFY_RETRY_MAX_S` (a
Modbus charger's too, whose try cut at the deadline ends there); none starts while one is in
flight (`verify_tried_at`)."""

VERIFY_RETRY_MAX_S = 8.0
"""The longest wait between two tries (a charger that keeps refusing its failsafe settings
stays reserved at its maximum meanwhile: conservative, not a risk)."""

FALLBACK_REREAD_S = 300.0
"""How often a fallback current its device holds (`HeldFallbacks.held`) is read again, with
its other failsafe settings: an installer may change it in the vendor's tool at any time."""

ONE_PHASE_SETTLE_S = 10.0
"""How long an EV at a three-phase connector must draw on one phase alone (readings that
far apart) before it counts there only."""

ONE_PHASE_MIN_A = 4.0
"""The least draw on that phase that says so (below an EV's 6 A minimum, above noise)."""

ONE_PHASE_IDLE_A = 1.0
"""A phase drawing more than this is in use."""

OVERSHOOT_NOISE_A = 0.5
OVERSHOOT_FACTOR = 1.1
"""An EV may draw up to (its offer + `OVERSHOOT_NOISE_A`) x this before a charger faults it
(7 s on end): EVerest's EvseManager soft over-current check (manifest.yaml,
soft_over_current_measurement_noise_A 0.5, soft_over_current_tolerance_percent 10). A
current beyond that on a connector's maximum is no draw (`plausible_a`)."""


def plausible_a(max_current_a: float) -> float:
    """The most a connector built for `max_current_a` may read on a phase as its EV's draw
    (`OVERSHOOT_FACTOR`); beyond it, a reading is a sensor's or register's fault (mA read as
    A, a float32 register's NaN or inf)."""
    return (max_current_a + OVERSHOOT_NOISE_A) * OVERSHOOT_FACTOR


@dataclass
class ConnectorRuntime:
    """What the planner knows of one connector between cycles."""

    watch: ChargerWatch
    reading: Reading | None = None
    sent_a: float | None = None
    sent_phases: int = 0
    sent_at: float = -math.inf
    """When its setpoint last changed."""
    least_a: float | None = None
    """The least setpoint in force since its latest reading (None: none known): what caps
    that reading (`known_draw`); a raise after a decrease does not lift it, its EV may have
    followed the decrease since."""
    least_at: float = -math.inf
    """When that setpoint went out."""
    draw: Phases3 = (0.0, 0.0, 0.0)
    """Latest known draw on the grid phases (A)."""
    failsafe_a: float | None = None
    """The failsafe current its charger was last configured with, or its device holds as
    last read (`HeldFallbacks.held`); None: not yet. The one record of it (`CyclePlanner.
    fallback_a`)."""
    failsafe_unverified: bool = False
    """Its failsafe settings could not be configured: treated as unreachable until they are."""
    verify_tried_at: float = -math.inf
    """When its failsafe settings were last asked to be configured and verified, or the last
    try ended; `math.inf` while one is in flight (`control.dispatch`: an OCPP station's
    exchange goes on past the command deadline, and no other try is started meanwhile)."""
    verify_misses: int = 0
    """Tries in a row that ended without verifying them (`VERIFY_RETRY_S`'s back-off)."""
    ev_limit_a: float = math.inf
    """What the EV is estimated to take, from its draw well under its setpoint for a while."""
    short_since: float | None = None
    """Since when the EV has drawn more than `EV_HEADROOM_A` under its setpoint, on end."""
    lowered_at: float | None = None
    """When a lowered setpoint was accepted, until a later reading shows the EV followed it."""
    raised_at: float = -math.inf
    """When an increase of its setpoint (or one not known to have gone out) was last
    accepted: EVs take the offers they are sent in turn, so its EV may still take that one
    up to `settle_s` later whatever was sent after, and no reading before then shows it
    followed a decrease (while its EV wants current: an idle one's, such as a DC hold's,
    does)."""
    seen_above: bool = False
    """A reading after `lowered_at` showed its EV still above the lowered setpoint."""
    limit_check: LimitCheck = field(default_factory=LimitCheck)
    """Whether its charger applies its limits; not following: reserved at its maximum."""
    ev_phase: int | None = None
    """The grid phase its EV draws on alone (a one-phase EV at a three-phase connector)."""
    one_phase_seen: tuple[int, float] | None = None
    """The phase its EV was first seen drawing on alone, and the reading's time."""
    started: bool = False
    """Its EV has drawn current since it last began to want it (one that has not may start
    at any moment, before its values show it)."""
    held_a: float | None = None
    """Idle and held at its minimum (`wants_offer`): the allocator's setpoint for it two
    cycles ago."""
    implausible: bool = False
    """Its latest reading's currents are none it can carry (`take`): its draw is unknown."""

    def take(self, reading: Reading, grid_phases: tuple[int, int, int], most_a: float) -> bool:
        """A new reading, and its draw on the grid phases. One with a phase current beyond
        `most_a` either way (`plausible_a`), or not a number, says nothing of its draw: it
        counts 0 A, not capped at its maximum. The base load is the meter minus the known
        draws, so a draw counted too high is the unsafe side: counted at 500 A (a register
        glitch, mA read as A) the base fell by 500 A and every charger was raised, 74 A
        metered against 40 A for 10 cycles; capped at its maximum it still fell by what
        that exceeds its true draw. At 0 A its true draw counts in the base load as well as
        in its own setpoint: twice, conservative, and it keeps charging. Newer values are
        capped from now by the setpoint in force (`least_a`); a status alone changes no cap
        (an OCPP StatusNotification after a decrease would lift it to the raise after).
        Whether its currents turned implausible with this reading (an operator's event)."""
        draw = grid_draw(reading, grid_phases, most_a)
        if self.reading is None or reading.at > self.reading.at:  # newer values
            self.least_a, self.least_at = self.sent_a, self.sent_at
        before, self.reading = self.implausible, reading
        self.implausible = draw is None
        self.draw = _NONE if draw is None else draw
        return self.implausible and not before

    def wants_offer(self, wants: bool, hold_minimum: bool, decided_a: float | None) -> bool:
        """Whether the allocator is to count it as wanting current this cycle: when its EV
        wants it, or, idle, when it is held at its minimum (a DC charger starts no session
        under it: NoFreePower, evcc-io/evcc#28493). An idle one whose minimum was taken back
        (no room) asks for nothing for one cycle: that ends its allocator session, and with
        it the pause rules (120 s off before it may start again), there to spare an EV's
        contactor, not an idle offer: an EV arriving meanwhile (its station still shows
        Unavailable, so hubgate cannot tell) would wait them out for nothing. Taken back is
        the allocator's decision (`decided_a`: its setpoint for it last cycle, None before
        the first), not what went out: a command that failed or was cut short at the
        command deadline left it wanting, and paused for those 120 s."""
        if wants or not hold_minimum:
            self.held_a = None
            return wants
        taken_back = decided_a == 0.0 and (self.held_a or 0.0) > 0.0
        self.held_a = decided_a
        return not taken_back

    def inherit_draw(self, now: float) -> None:
        """After a hand-over (`ChargerWatch.inherited_draw_a`), a new reading: one without a
        current while its EV may draw (C, D; an OCPP station's status before its first
        MeterValues) keeps the draw its previous leader last read (one not ready, B, draws
        nothing, IEC 61851-1): counted at 0, the meters
        showed that draw as base load, and a hand-back lowered the chargers beside it,
        17 -> 11 A (docs/ha.md). A first current read here ends the inheritance."""
        reading, watch = self.reading, self.watch
        if reading is None:
            return
        if reading.measured_current():
            watch.inherited_draw_a = None
        elif reading.state is None or reading.state in _DRAWING:
            self.draw = watch.inherited_draw(now) or self.draw

    def inheriting(self, now: float) -> Phases3 | None:
        """The draw passed on at a hand-over while it stands for this one's (`inherit_draw`):
        no current read here yet, the old lease not lapsed (`BaseLoads.loads`)."""
        reading = self.reading
        if reading is not None and reading.measured_current():
            return None
        return self.watch.inherited_draw(now)

    def try_verifying(self, now: float) -> bool:
        """Whether its failsafe settings are to be asked for at `now` (none in flight, and
        `VERIFY_RETRY_S`, doubled per try in a row that missed, after the last); if so,
        this is the try."""
        wait_s = VERIFY_RETRY_S * 2 ** min(max(self.verify_misses - 1, 0), 8)
        if now - self.verify_tried_at < min(wait_s, VERIFY_RETRY_MAX_S) - 1e-9:
            return False
        self.verify_tried_at = now
        return True

    def verify_ended(self, now: float, verified: bool) -> None:
        """A try that was in flight ended at `now`, having `verified` its settings or not."""
        self.verify_tried_at = now
        self.verify_misses = 0 if verified else self.verify_misses + 1

    def observe_phases(self, wants: bool) -> bool:
        """Follow the phases the EV draws on in its latest reading (every phase measured):
        on one grid phase alone in readings `ONE_PHASE_SETTLE_S` apart, it counts there
        only (`ev_phase`); on another phase too, or once the session ends, on all three
        again at once. A reading that shows no draw changes nothing. Whether `ev_phase`
        changed."""
        before, reading = self.ev_phase, self.reading
        if not wants:
            self.ev_phase = self.one_phase_seen = None
        elif reading is not None and reading.phase_currents() is not None:
            draw = self.draw
            in_use = (draw[0] > ONE_PHASE_IDLE_A) + (draw[1] > ONE_PHASE_IDLE_A)
            in_use += draw[2] > ONE_PHASE_IDLE_A
            if not in_use:
                return False  # no draw: nothing changes
            on = 0 if draw[0] > ONE_PHASE_IDLE_A else 1 if draw[1] > ONE_PHASE_IDLE_A else 2
            if in_use > 1 or self.ev_phase not in (None, on):
                self.ev_phase = self.one_phase_seen = None
            elif draw[on] >= ONE_PHASE_MIN_A:
                seen = self.one_phase_seen
                if seen is None or seen[0] != on:
                    self.one_phase_seen = seen = (on, reading.at)
                if reading.at - seen[1] >= ONE_PHASE_SETTLE_S:
                    self.ev_phase = on
        return self.ev_phase != before

    def known_draw(
        self, now: float, settle_s: float, *, reserved: bool = False
    ) -> tuple[Phases3, Phases3]:
        """Its draw as counted against its node's meter, and what it may still draw above
        that on its way down. The draw: the latest reading, capped at the least setpoint in
        force since (`least_a`): a value above it, read before the setpoint was sent or
        before the EV followed it, says more than it may draw now (whatever it draws above
        is then counted as base load, never less). A raise after it lifts no cap: capped at
        the raise, a reading of 32 A from before a decrease to 19 A that the EV followed
        counted 31 A, and hid a 12 A base rise through a grid operator's cut (test_base_
        transients). Counted whole, a reading taken after a decrease went out but before the EV
        followed stood until the next one while the meter showed the EV follow at once: the
        base load seemed to fall by what it shed, and the allocator gave that out (the e2e
        site's three OCPP EVs, read every 2 s, got 13.3 A each where 6.7 A fitted). A
        `reserved` connector (unreachable, not following, not verified: its reservation
        counts what it may draw beyond its reading) is capped only by a setpoint sent after
        its reading. On its way down: the part of that reading above a setpoint lowered
        less than `settle_s` ago (`least_at`) (the EV's reaction time); whether it still
        draws it, only a later reading or the meter tells (`BaseLoads._metered`). No setpoint
        known since its reading (a command failed or was cut short): capped at the most that
        may be in force (`ChargerWatch.last_command_a`; none after a take-over until one
        is), nothing on its way down: a false but plausible reading (33 A read, 10 A drawn)
        hid its difference, 63 A metered against 40 A for 4 cycles (review, session 16).
        None at all once a state
        newer than its values says no EV takes current (unplugged, faulted, or paused: B,
        connected and not ready, draws nothing under IEC 61851-1): its last values are of
        before, and counted they would hide as much base load (an OCPP EV paused with
        MeterValues 10 s apart: its 22 A hid an 11 A base rise, 61 A commanded against
        40 A for 7 cycles). Never read
        here: the draw the previous leader last read, until its lease lapses
        (`ChargerWatch.inherited_draw`; read without a current: `inherit_draw`)."""
        reading, cap = self.reading, self.least_a
        if reading is None:  # never read here: what the leader before read, if inherited
            return self.watch.inherited_draw(now) or self.draw, _NONE
        if (
            reading.state is not None
            and reading.state not in _DRAWING
            and reading.state_newer_than_values()
        ):
            return _NONE, _NONE
        draw = self.draw
        if reserved and reading.at >= self.sent_at:
            return draw, _NONE
        if cap is None:  # no setpoint known since it was read: at most what may be in force
            held = self.watch.last_command_a
            if held is None or max(draw) <= held:
                return draw, _NONE
            return (min(draw[0], held), min(draw[1], held), min(draw[2], held)), _NONE
        if max(draw) <= cap:
            return draw, _NONE
        known = (min(draw[0], cap), min(draw[1], cap), min(draw[2], cap))
        if now - self.least_at >= settle_s:
            return known, _NONE
        return known, (draw[0] - known[0], draw[1] - known[1], draw[2] - known[2])

    def read_now(self, now: float) -> bool:
        """Whether its values were read this cycle (at or after `now`, the cycle's start, as
        the meters), every phase: they show what it draws. Else, on its way down after a
        decrease, what it may still draw above its setpoint is no credit under a cut
        (`CyclePlanner.inputs`, `BaseLoads.cut`): values read before the decrease went out
        say nothing of whether the EV followed, and such a credit explained a 13.8 A base
        rise through a cut to 30 %, 36 A metered for 4 cycles (test_base_transients). Read
        now, its excess is real: ended, an EV 2 A above its setpoint at a cut to 7.25 A was
        counted as base load and paused (test_schedules)."""
        reading = self.reading
        return reading is not None and reading.at >= now and reading.phase_currents() is not None

    def may_start_unseen(self, now: float, *, cut: bool) -> bool:
        """Whether what the meters see rise at `now` may be its EV starting before its
        values show it (`CyclePlanner.inputs`: a status newer than its values, or a new
        offer within `settle_s` to an EV that has not drawn yet). Not when its values were
        read this cycle (at or after `now`, the cycle's start, as the meters that show the
        rise), every phase, and its state with them: they show what it draws. Nor when its
        status, newer than its values, says its EV is not ready (B): a start comes with a
        status that says so. Nor under a `cut` (`BaseLoads.cut`) while its reading says B
        (its state may be as old as its values, which a station that derives it from them
        has): such credits, one start after another, held the e2e site's base load at the
        grid meter's first reading (0 A) while it was 10 A, and a cut gives that to the
        others. Credited, a base load rise was hidden from the allocator (40 A commanded
        against 30 A for 9 cycles, test_base_transients)."""
        reading = self.reading
        if reading is None:
            return True
        if reading.state is IecState.B and (cut or reading.state_newer_than_values()):
            return False
        return reading.state_newer_than_values() or not self.read_now(now)

    def followed(self, at: float) -> float | None:
        """A reading taken at `at` shows its EV followed the lowered setpoint: the time it
        took, when a reading before showed it above (else it may never have drawn more, and
        the time says only when it was read); `lowered_at` is cleared."""
        lowered, seen = self.lowered_at, self.seen_above
        self.lowered_at, self.seen_above = None, False
        return at - lowered if seen and lowered is not None else None

    def ev_estimate(self, wants: bool, drawn: float, now: float) -> float:
        """Trim to the draw when the EV has taken less than offered for `EV_SETTLE_S`
        (whatever the setpoint did meanwhile); release once it takes all. An implausible
        reading (`take`) says nothing of what it takes: no change."""
        if self.implausible and wants:
            return self.ev_limit_a
        if not wants or not self.sent_a:
            self.ev_limit_a, self.short_since = math.inf, None
        elif drawn < self.sent_a - EV_HEADROOM_A:
            if self.short_since is None:
                self.short_since = now
            if now - self.short_since >= EV_SETTLE_S:
                self.ev_limit_a = drawn + EV_HEADROOM_A
        else:
            self.short_since = None
            if drawn >= self.sent_a - EV_HEADROOM_A / 4:
                self.ev_limit_a = math.inf
        return self.ev_limit_a


def grid_draw(reading: Reading, grid_phases: tuple[int, int, int], most_a: float) -> Phases3 | None:
    """A reading's phase currents on the grid phases its terminals draw on (A, at least 0);
    None when one is beyond `most_a` either way or not a number (`ConnectorRuntime.take`)."""
    values = reading.values
    l1, l2, l3 = values.get(_L1), values.get(_L2), values.get(_L3)
    if not (
        (l1 is None or -most_a <= l1 <= most_a)
        and (l2 is None or -most_a <= l2 <= most_a)
        and (l3 is None or -most_a <= l3 <= most_a)
    ):
        return None
    terminals = (
        l1 if l1 is not None and l1 > 0 else 0.0,
        l2 if l2 is not None and l2 > 0 else 0.0,
        l3 if l3 is not None and l3 > 0 else 0.0,
    )
    if grid_phases == _IN_ORDER:
        return terminals
    draw = [0.0, 0.0, 0.0]
    for terminal, phase in enumerate(grid_phases):
        draw[phase] += terminals[terminal]
    return (draw[0], draw[1], draw[2])


def rise_to(allowance: float, unknown: Phases3, draw: Phases3, phases: tuple[int, ...]) -> Phases3:
    """`unknown` plus, on `phases`, what a connector drawing `draw` may still rise to
    `allowance` (A per phase)."""
    rise = [max(allowance - draw[p], 0.0) if p in phases else 0.0 for p in range(3)]
    return (unknown[0] + rise[0], unknown[1] + rise[1], unknown[2] + rise[2])


_NONE: Phases3 = (0.0, 0.0, 0.0)
_DRAWING = frozenset({IecState.C, IecState.D})
"""The states in which an EV may draw current."""
_L1 = Quantity.CURRENT_L1
_L2 = Quantity.CURRENT_L2
_L3 = Quantity.CURRENT_L3
_IN_ORDER = (0, 1, 2)
