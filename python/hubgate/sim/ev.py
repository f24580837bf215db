"""An EV on an AC connector: it follows the offered limit late, tapers, pauses below 6 A.

The EVSE offers a limit (the PWM duty cycle); the EV takes it over after its
reaction delay. Its draw per phase is then the smallest of that limit, its
onboard charger's maximum and its taper near full. Below 6 A (IEC 61851) the
offer means "pause": the EV draws nothing. A full EV stays plugged in until it
leaves, drawing nothing.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

MIN_CURRENT_A = 6.0
"""The lowest current an AC EV charges at; a lower offer pauses it (IEC 61851)."""


@dataclass
class Ev:
    """One EV's battery and onboard charger, and its view of the offered limit."""

    capacity_kwh: float
    max_current_a: float
    phases: int
    reaction_s: float
    soc: float
    target_soc: float
    taper_from_soc: float
    departs_at: float
    kind: str = ""
    need_kwh: float | None = None
    """A fleet vehicle's energy need (its timetable's), None for a random arrival."""
    vehicle: int | None = None
    """Its number in the fleet's timetable."""
    followed_a: float = 0.0
    """The limit the EV currently follows (taken over after the reaction delay)."""
    draw_a: float = 0.0
    """Current drawn per phase during the last step."""
    energy_kwh: float = 0.0
    _offered: float = 0.0
    _pending: deque[tuple[float, float]] = field(default_factory=deque)

    def offer(self, limit_a: float, now: float) -> None:
        """The EVSE offers `limit_a` from `now` on; the EV follows after its delay."""
        if limit_a != self._offered:
            self._offered = limit_a
            self._pending.append((now + self.reaction_s, limit_a))

    def taper_a(self) -> float:
        """The most the battery accepts per phase at the present state of charge."""
        if self.soc >= self.target_soc:
            return 0.0
        if self.soc <= self.taper_from_soc:
            return self.max_current_a
        return self.max_current_a * (1.0 - self.soc) / (1.0 - self.taper_from_soc)

    def step(self, now: float, dt: float, voltage_v: float) -> float:
        """Charge from `now` for `dt` seconds; the current drawn per phase."""
        pending = self._pending
        while pending and pending[0][0] <= now:
            self.followed_a = pending.popleft()[1]
        limit = self.followed_a
        if limit < MIN_CURRENT_A:
            self.draw_a = 0.0
            return 0.0
        draw = min(limit, self.max_current_a, self.taper_a())
        kwh = draw * self.phases * voltage_v * dt / 3.6e6
        self.energy_kwh += kwh
        self.soc += kwh / self.capacity_kwh
        self.draw_a = draw
        return draw
