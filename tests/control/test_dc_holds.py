"""Idle DC holds (`hold_minimum`) yield to the EVs while a limit binds: one per binding node
keeps its minimum, in turns of `hold_rotate_s` (`hubgate.control.dc_holds`)."""

from __future__ import annotations

import tomllib
from itertools import pairwise

from hubgate.config.model import SiteConfig
from hubgate.control.limits import LimitBook
from hubgate.control.plan import CyclePlanner, Plan
from hubgate.devices.model import Reading
from hubgate.profiles.model import IecState, Quantity
from tests.support.loop_site import commanded
from tests.support.toml_tables import dc_charger, dc_holding

FEEDER_A = 30.0
ROTATE_S = 10.0

SITE = f"""
[site]
name = "dc holds"
[grid]
phase_current_limit_a = 400
[[nodes]]
id = "hpc"
kind = "feeder"
phase_current_limit_a = {FEEDER_A}
[[chargers]]
id = "ac-1"
node = "hpc"
ocpp = {{ identity = "AC-1" }}
connectors = [{{ id = 1, max_current_a = 32 }}]
{"".join(dc_charger(f"hpc-{n}", "hpc", dc_holding(150)) for n in (1, 2, 3))}
[control]
cycle_s = 1
hold_rotate_s = {ROTATE_S}
"""

DC = ("hpc-1#1", "hpc-2#1", "hpc-3#1")


class Site:
    """The planner over an AC EV that follows its setpoint at once and three idle DC
    stations (Unavailable, drawing nothing), every command accepted."""

    def __init__(self) -> None:
        self.config = SiteConfig.model_validate(tomllib.loads(SITE))
        self.planner = CyclePlanner(self.config, LimitBook())
        self.ev_plugged = True
        self.now = 0.0

    def cycle(self) -> Plan:
        planner, now = self.planner, self.now
        ac = planner.connectors[planner.allocator.find_connector("ac-1#1") or 0]
        draw = min(ac.sent_a or 0.0, 32.0) if self.ev_plugged else 0.0
        readings: dict[str, object] = {
            "ac-1#1": Reading(now, phases(draw), IecState.C if self.ev_plugged else IecState.A)
        }
        readings |= {name: Reading(now, phases(0.0), IecState.F) for name in DC}
        plan = commanded(planner, readings, now)
        self.now += 1.0
        return plan

    def setpoints(self, plan: Plan) -> dict[str, float]:
        names = self.planner.allocator.connector_names
        return dict(zip(names, plan.result.setpoint_a, strict=True))


def phases(amps: float) -> dict[Quantity, float | None]:
    return {Quantity.CURRENT_L1: amps, Quantity.CURRENT_L2: amps, Quantity.CURRENT_L3: amps}


def test_while_a_limit_binds_one_idle_dc_hold_at_a_time_keeps_its_minimum_in_turns() -> None:
    """Three idle DC holds (7.7 A each) and an EV wanting 32 A on a 30 A feeder: held all
    three, they would leave the EV 6.9 A; the EV gets the rest of the feeder but one
    minimum, and the hold goes round the three every `hold_rotate_s`, so an EV arriving at
    any of them (its station Unavailable) starts within 2 x `hold_rotate_s`. Every cycle
    the feeder's limit holds with every hold counted in full."""
    site = Site()
    minimum = site.config.chargers[1].connectors[0].min_current_a
    held: list[str | None] = []
    for _ in range(60):
        setpoints = site.setpoints(site.cycle())
        assert sum(setpoints.values()) <= FEEDER_A + 1e-9
        on = [name for name in DC if setpoints[name] >= minimum]
        assert len(on) <= 1 or site.now <= 3  # every hold offered before the EV's first trim
        held.append(on[0] if len(on) == 1 else None)
        if site.now > 10:
            assert setpoints["ac-1#1"] >= FEEDER_A - minimum - 0.2
    # a turn begins a cycle after the last ended: the new hold waits for the old one's
    # decrease to be seen followed (its station's reading)
    starts = [t for t in range(2, 60) if held[t] is not None and held[t] != held[t - 1]]
    assert [held[t] for t in starts] == [*DC, *DC][: len(starts)]
    assert len(starts) == 6
    assert {b - a for a, b in pairwise(starts[1:])} == {ROTATE_S}


def test_once_no_limit_binds_every_idle_dc_connector_is_held_again() -> None:
    """The EV leaves: nothing is held below what it wants, and `hold_rotate_s` later every
    idle DC connector is offered its minimum again."""
    site = Site()
    minimum = site.config.chargers[1].connectors[0].min_current_a
    for _ in range(30):
        site.cycle()
    site.ev_plugged = False
    offered = []
    for _ in range(20):
        setpoints = site.setpoints(site.cycle())
        offered.append(sum(setpoints[name] >= minimum for name in DC))
    assert max(offered[: int(ROTATE_S) - 1]) <= 1
    assert offered[-5:] == [3] * 5
