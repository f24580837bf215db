"""What a leader passes on to the next one about its chargers, sans-IO
(`control.authority.Inheritance`, carried in the cluster's lease).

A charger keeps its stored charging profiles while offline and goes on applying them (OCPP
1.6 §3.13.6, offline behaviour of smart charging; 2.0.1 use cases K06/K07): once the old
leader's lease profile has lapsed, the permanent failsafe profile it installed and verified
(same ids and current on both gateways) is what limits a charger the new leader cannot
reach yet. So the leader `bequest`s those connectors, and a new leader `inherit`s them: it
assumes them at their failsafe current, not their maximum, from when the old lease lapsed
until it verifies them itself: at the failsafe current the old leader passed on with each
(the one in force on it), or the one it would configure itself if that is larger (a
configuration it began may have reached the charger). Until then, after a hand-over, it assumes them at the current
the old leader last commanded them, and counts the draw the old leader last read as
theirs in the meters, not base load (`held_currents`, in its release): their lease
profiles hold them there, so the chargers that reconnect a moment later do not leave the
others paused meanwhile for want of room.
"""

from __future__ import annotations

import math
from collections.abc import Collection

from hubgate.control.authority import (
    NOTHING_INHERITED,
    Authority,
    Held,
    Inheritance,
    Succession,
)
from hubgate.control.connector_runtime import plausible_a
from hubgate.control.decisions import Phases3
from hubgate.control.plan import CyclePlanner

HANDOVER_LAPSE_MARGIN_S = 2.0
"""After a hand-over, the old leader's lease profiles are counted as lapsed this long after
one device lease (a charger's clock may run behind ours; `ocpp.smart_charging.LAPSE_MARGIN_S`
checks a lapse as late)."""


def inherit(planner: CyclePlanner, inherited: Inheritance, now: float) -> None:
    """A new leader's planner (after `CyclePlanner.take_over` at `now`) counts on the
    connectors in `inherited.failsafes` at their failsafe current once the old leader's lease
    has lapsed: at once after a take-over (the standby waited for the device leases), one
    device lease and `HANDOVER_LAPSE_MARGIN_S` later after a hand-over (until then at the
    current in `inherited.held`, where the old leader left one)."""
    lapsed_at = now
    if inherited.handed_over:
        lapsed_at += planner.site.control.lease_s + HANDOVER_LAPSE_MARGIN_S
    for info, runtime in zip(planner.model.connectors, planner.connectors, strict=True):
        watch, failsafe_a = runtime.watch, inherited.failsafes.get(info.name)
        held = None if failsafe_a is None else inherited.held.get(info.name)
        watch.inherited_from = None if failsafe_a is None else lapsed_at
        watch.inherited_failsafe_a = failsafe_a or 0.0
        watch.inherited_a = None if held is None else held.current_a
        watch.inherited_draw_a = None if held is None else counted_draw(held, info.max_current_a)
        watch.inherited_draw_until = -math.inf if held is None else lapsed_at


def counted_draw(held: Held, max_current_a: float) -> Phases3 | None:
    """The draw its old leader last read, as a new leader counts it: at most the current
    that leader last commanded (its lease profile holds it there or below: a draw counted
    too high hides base load); none when it is no draw a connector can carry
    (`connector_runtime.plausible_a`)."""
    most, cap = plausible_a(max_current_a), held.current_a
    if not all(-most <= a <= most for a in held.draw_a):
        return None
    return (min(held.draw_a[0], cap), min(held.draw_a[1], cap), min(held.draw_a[2], cap))


def bequest(planner: CyclePlanner, lapsing: Collection[str]) -> dict[str, float]:
    """The connectors a successor may count on at their failsafe current once their leases
    lapse, with that current: among `lapsing` (chargers whose lease falls back to the
    failsafe current), those whose failsafe this gateway verified and that were checked to
    follow their limits, and those it inherited and has not verified yet (unless caught not
    following since). The current is the one in force on it (`Verification.fallback_a`),
    or its new share while that is being configured, if larger: the charger holds the one
    until the other is verified, and a configuration cut short may have reached it."""
    return {
        info.name: max(planner.verification.fallback_a(index), planner.failsafe_a[index])
        for index, (info, runtime) in enumerate(
            zip(planner.model.connectors, planner.connectors, strict=True)
        )
        if info.name in lapsing
        and not runtime.failsafe_unverified
        and (
            (not runtime.watch.needs_verification and runtime.limit_check.following is True)
            or (
                runtime.watch.inherited_from is not None
                and runtime.limit_check.following is not False
            )
        )
    }


def held_currents(planner: CyclePlanner, failsafes: Collection[str]) -> dict[str, Held]:
    """Each of `failsafes` as this gateway leaves it: the current it last commanded
    (acknowledged) and the draw it last read."""
    return {
        info.name: Held(runtime.watch.last_command_a, runtime.draw)
        for info, runtime in zip(planner.model.connectors, planner.connectors, strict=True)
        if info.name in failsafes and runtime.watch.last_command_a is not None
    }


def succeed(planner: CyclePlanner, authority: Authority, now: float) -> None:
    """This gateway commands under a new epoch from `now`: every charger's failsafe is
    verified and every setpoint sent again (`CyclePlanner.take_over`), in this cycle (the
    tries its plans counted while it sent nothing do not hold a verification back for
    `VERIFY_RETRY_S`), and what the leader before left is inherited."""
    inherited = authority.inherited() if isinstance(authority, Succession) else NOTHING_INHERITED
    planner.take_over()
    for runtime in planner.connectors:
        runtime.verify_tried_at = -math.inf
    inherit(planner, inherited, now)


def bequeath(authority: Authority, planner: CyclePlanner, lapsing: Collection[str]) -> None:
    """As leader, after a cycle's commands: what a successor may count on (`bequest`),
    for an authority that passes it on."""
    if isinstance(authority, Succession):
        failsafes = bequest(planner, lapsing)
        authority.bequeath(failsafes, held_currents(planner, failsafes))
