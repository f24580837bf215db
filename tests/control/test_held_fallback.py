"""A charger whose device holds its fallback current whatever hubgate asks (Alfen's safe
current, 1212, set in ACE Service Installer) is counted in the failsafe budget at the value
read from it, at its maximum until read; one above the site's failsafe current is an event.
A limit validity (Alfen 1208) read as 0 while commanded is a lapsed limit, not a valid one.
The planner alone, sans-IO: what the devices read is handed in as `configure_failsafe` and
the readings would give it (the wire is in test_held_fallback_wire.py)."""

from __future__ import annotations

import tomllib

from hubgate.config.model import SiteConfig
from hubgate.control.connector_runtime import FALLBACK_REREAD_S
from hubgate.control.limits import LimitBook
from hubgate.control.plan import CyclePlanner
from hubgate.devices.model import HeldCurrent, Reading
from hubgate.profiles.model import IecState, Quantity
from hubgate.state import EventLevel
from tests.control.test_failsafe_budget import CHARGER, plan_and_send
from tests.control.test_failsafe_budget import SITE_TOML as BUDGET_SITE

SITE_TOML = BUDGET_SITE.replace("phase_current_limit_a = 63", "phase_current_limit_a = 20")
"""test_failsafe_budget's site on 20 A per phase: room for three 6 A fallbacks."""

HELD_AT = "register 1212, set in ACE Service Installer"
CURRENTS = (Quantity.CURRENT_L1, Quantity.CURRENT_L2, Quantity.CURRENT_L3)


def planner() -> CyclePlanner:
    """Three connectors on 20 A per phase, room for three 6 A fallbacks; cp-0's device
    holds its own, at its 32 A maximum until read."""
    chargers = "".join(CHARGER.format(i=i) for i in range(3))
    site = SiteConfig.model_validate(tomllib.loads(SITE_TOML.format(chargers=chargers)))
    return CyclePlanner(site, LimitBook(), fixed_failsafe={("cp-0", 1): 32.0})


def cycle(
    planner: CyclePlanner,
    now: float,
    held_a: float,
    validity_s: float | None = None,
) -> dict[int, float]:
    """One cycle, every connector with an EV plugged; cp-0's device reads `held_a` when its
    failsafe is verified and `validity_s` in its limit validity field. The failsafe each
    verified connector was told, by index."""
    values = dict.fromkeys(CURRENTS, 0.0)
    readings = {
        f"cp-{i}#1": Reading(
            at=now,
            values=values
            | ({Quantity.LIMIT_VALIDITY: validity_s} if validity_s is not None else {})
            if i == 0
            else values,
            state=IecState.B,
        )
        for i in range(3)
    }
    return plan_and_send(
        planner, readings, now, lambda i: HeldCurrent(held_a, HELD_AT) if i == 0 else None
    )


def cycles_until(planner: CyclePlanner, start: float, end: float, held_a: float) -> list[float]:
    """Cycles every 2 s from `start` up to `end`: when cp-0's failsafe was verified."""
    at, verified = start, []
    while at <= end:
        if 0 in cycle(planner, at, held_a):
            verified.append(at)
        at += 2.0
    return verified


def held_events(planner: CyclePlanner) -> list[str]:
    return [e.message for e in planner.events.recent if "whatever hubgate asks" in e.message]


def test_a_held_fallback_counts_at_its_maximum_until_read_then_as_read() -> None:
    p = planner()
    # until read: 32 A fixed first, no room beside it on 20 A, the others told 0 A
    assert cycle(p, 0.0, held_a=6.0) == {0: 32.0, 1: 0.0, 2: 0.0}
    assert p.connectors[0].failsafe_a == 6.0  # read: 6 A
    assert p.failsafes.fixed_a[0] == 6.0
    # read at 6 A: three 6 A fallbacks fit, the others are told 6 A; cp-0 holds its own
    assert cycle(p, 1.0, held_a=6.0) == {1: 6.0, 2: 6.0}
    assert list(p.failsafe_a) == [6.0, 6.0, 6.0]
    assert cycle(p, 2.0, held_a=6.0) == {}
    assert held_events(p) == []  # no warning: 6 A is within the site's failsafe current
    # what the operator sees, once per connector: read again, it stays what it was
    assert cycles_until(p, 4.0, FALLBACK_REREAD_S + 2, held_a=6.0) == [FALLBACK_REREAD_S]
    p.events.flush()
    [told] = [e for e in p.events.recent if "falls back to" in e.message]
    assert (told.subject, told.severity) == ("cp-0#1", EventLevel.INFO)
    assert told.message == (
        f"falls back to 6 A on its own ({HELD_AT}), within the site's failsafe current 6 A: "
        "counted so in the failsafe budget"
    )


def test_a_held_fallback_above_the_failsafe_current_is_an_event_and_counts_in_full() -> None:
    """The installer set 32 A in ACE: every other connector on the 20 A site is given 0 A,
    one event names the device, the register and where to fix it; it is read again every
    `FALLBACK_REREAD_S` (not every cycle), and once lowered it counts at its new value."""
    p = planner()
    cycle(p, 0.0, held_a=32.0)
    assert cycle(p, 1.0, held_a=32.0) == {}
    assert list(p.failsafe_a) == [32.0, 0.0, 0.0]
    [event] = held_events(p)
    assert "32 A" in event
    assert HELD_AT in event
    assert "failsafe current 6 A" in event
    assert [e.subject for e in p.events.recent if e.message == event] == ["cp-0#1"]
    # read again once FALLBACK_REREAD_S after the first read (at 0 s), not every cycle
    assert cycles_until(p, 2.0, FALLBACK_REREAD_S + 2, held_a=32.0) == [FALLBACK_REREAD_S]
    assert len(held_events(p)) == 1  # no second event for the same value
    lowered = cycles_until(p, FALLBACK_REREAD_S + 4, 2 * FALLBACK_REREAD_S, held_a=6.0)
    assert lowered == [2 * FALLBACK_REREAD_S]  # lowered in ACE: counted at the next read
    assert cycle(p, 2 * FALLBACK_REREAD_S + 2, held_a=6.0) == {1: 6.0, 2: 6.0}
    assert list(p.failsafe_a) == [6.0, 6.0, 6.0]
    [cleared] = [e for e in p.events.recent if "within the site's failsafe" in e.message]
    assert cleared.subject == "cp-0#1"
    assert "falls back to 6 A now (register 1212" in cleared.message
    assert cleared.severity is EventLevel.INFO


def test_a_held_fallback_read_above_the_connector_maximum_counts_at_the_maximum() -> None:
    p = planner()
    cycle(p, 0.0, held_a=40.0)
    assert p.connectors[0].failsafe_a == 32.0  # the connector draws no more than its 32 A
    assert "40 A" in held_events(p)[0]


def test_a_limit_validity_of_0_while_commanded_is_a_lapsed_limit() -> None:
    """1208 reads 0 before hubgate commands (nothing to lapse), and above 0 after each
    write; 0 while commanded means the device fell back: its failsafe is verified (the
    held fallback read) and its setpoint sent again at once, with one event per lapse."""
    p = planner()
    assert 0 in cycle(p, 0.0, held_a=6.0, validity_s=0.0)  # not commanded yet: no lapse
    assert cycle(p, 1.0, held_a=6.0, validity_s=59.0) == {1: 6.0, 2: 6.0}
    assert not p.verification.held.lapsed[0]
    assert cycle(p, 2.0, held_a=6.0, validity_s=0.0) == {0: 6.0}  # lapsed: verified, re-sent
    assert p.verification.held.lapsed[0]
    lapses = [e for e in p.events.recent if "limit validity reads 0" in e.message]
    assert [e.subject for e in lapses] == ["cp-0#1"]
    assert "fallback current (6 A)" in lapses[0].message
    assert cycle(p, 3.5, held_a=6.0, validity_s=0.0) == {0: 6.0}  # still 0: again, no event
    assert len([e for e in p.events.recent if "limit validity reads 0" in e.message]) == 1
    assert cycle(p, 5.0, held_a=6.0, validity_s=58.0) == {}
    assert not p.verification.held.lapsed[0]
