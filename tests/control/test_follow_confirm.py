"""A reading confirms that an EV followed a decrease only once it can no longer be on its way
to an earlier, higher offer.

Real EVs take the offers they are sent in turn, each after their reaction time ("another
~6 s or so for some EVs" after a PWM change: EVerest PR #762, facts sheet allocation.md):
an increase followed at once by a decrease is taken up, then down, seconds later. The test
harness's `SimCharger` follows only its latest limit, so `InTurnCharger` models that
(a model: a fixed lag, each offer taken in the order sent).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hubgate.devices.model import AppliedLimit
from tests.control.test_base_transients import BOARD_A
from tests.support.loop_site import PlannedSite, SimCharger, SimSite

EV_LAG_S = 6.0
"""How long after an offer the in-turn EV draws it (EVerest PR #762: ~6 s for some EVs)."""


@dataclass
class InTurnCharger(SimCharger):
    """A charger whose EV takes each offer `EV_LAG_S` after it was sent, in the order sent
    (an increase and a decrease sent 2 s apart: up for 2 s, then down)."""

    offers: list[tuple[float, float]] = field(default_factory=list)

    def apply(self, now: float, current_a: float, phases: int) -> AppliedLimit:
        self.offers.append((now, current_a))
        return super().apply(now, current_a, phases)

    def advance(self, now: float) -> None:
        offered = [a for at, a in self.offers if at <= now - EV_LAG_S]
        taken = offered[-1] if offered else 0.0
        self.draw_a = min(taken, self.ev_max_a) if self.connected else 0.0
        self.history.append((now, self.draw_a))


def test_a_decrease_right_after_an_increase_is_not_confirmed_before_the_ev_could_take_it() -> None:
    """cp-1's EV leaves: cp-2 and cp-3 (in-turn EVs) are raised from 21 to 32 A; it comes
    back 3 s later: they are lowered to 21 A again before their EVs took the 32 A. Their
    readings then still show 21 A, at their new setpoint: that must not confirm they
    followed, freeing the 32 A reserved for them to cp-1, for their EVs take the 32 A
    offer a few seconds later (before: 86 A through the 64 A board for 2 s)."""
    sim = SimSite.build()
    sim.chargers[1:] = [InTurnCharger(c.id) for c in sim.chargers[1:]]
    site = PlannedSite.build(sim)
    cp1 = sim.charger("cp-1")
    site.run(40)
    assert min(site.setpoints().values()) > 20  # 64 A shared
    cp1.connected = False
    site.run(3)
    assert site.setpoints()["cp-2"] == site.setpoints()["cp-3"] == 32  # raised
    cp1.connected = True
    for _ in range(40):
        site.cycle()
        assert sim.meter.current(site.now) <= BOARD_A + 1e-6, (site.now, site.setpoints())
    assert min(site.setpoints().values()) > 20  # shared again
