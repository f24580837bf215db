"""A charger's phase currents where it measures none: from its power, else its energy register.

Used alike for Modbus chargers whose profile has no current fields and for OCPP chargers
that report no `Current.Import`. The current is I = P / (V * n) on each of the n phases
in use (the charger's phases-active field where it has one, else the phases it was last
commanded on; one phase is L1), with the measured phase voltage (else nominal). Accuracy:

- exact for a balanced load at unity power factor; at the 0.95-0.99 power factor of
  onboard chargers the real current is 1-5 % higher (P = V * I * cos phi);
- ±10 % where the nominal 230 V stands in for a grid at 207-253 V (EN 50160);
- an EV drawing on fewer phases than assumed (a one-phase EV behind a three-phase
  setpoint, on a charger that says nothing of its phases) shows a third of its current
  on each phase: no charger profile shipped lacks both currents and phases-active.

From the energy register alone, the power is the average between two readings at least
`EnergyRate.span_s` apart: it lags by half a span to one and a half (5 to 15 s at 10 s)
and is off by the register's resolution over the span (1 Wh over 10 s: ±360 W, ±0.5 A
on three phases).
"""

from __future__ import annotations

from hubgate.profiles.model import Quantity

Phases3 = tuple[float, float, float]

PHASE_VOLTAGES = (Quantity.VOLTAGE_L1, Quantity.VOLTAGE_L2, Quantity.VOLTAGE_L3)
MIN_VOLTAGE_V = 50.0
"""A phase voltage below this is a phase not connected, not the grid's."""


def currents_from_power(power_w: float, voltage_v: float, phases: int) -> Phases3:
    """Per phase: `power_w` spread evenly over the first `phases` (1 to 3) phases at
    `voltage_v`; the others carry nothing. Negative power counts as none."""
    if not 1 <= phases <= 3:
        raise ValueError(f"phases is 1, 2 or 3, not {phases}")
    if voltage_v <= 0:
        raise ValueError(f"voltage_v is positive, not {voltage_v}")
    amperes = max(power_w, 0.0) / (voltage_v * phases)
    return (amperes, amperes if phases >= 2 else 0.0, amperes if phases == 3 else 0.0)


def mean_voltage(voltages: tuple[float | None, ...], nominal_v: float) -> float:
    """The mean of the measured phase voltages, `nominal_v` when none was."""
    measured = [v for v in voltages if v is not None and v > MIN_VOLTAGE_V]
    return sum(measured) / len(measured) if measured else nominal_v


class EnergyRate:
    """The average power of an energy register (Wh) from readings at monotonic times.

    The power is taken between the newest reading and the last one at least `span_s`
    older, so a register read every cycle does not turn its resolution into noise; a
    register that goes back (reset, rollover) starts over."""

    def __init__(self, span_s: float = 10.0) -> None:
        if span_s <= 0:
            raise ValueError(f"span_s is positive, not {span_s}")
        self.span_s = span_s
        self._anchor: tuple[float, float] | None = None
        """(time, Wh) of the reading the power is taken from."""
        self._power_w: float | None = None

    def sample(self, at: float, energy_wh: float) -> float | None:
        """Take a reading; the average power (W) so far, None until one span has passed."""
        anchor = self._anchor
        if anchor is None or energy_wh < anchor[1] or at < anchor[0]:
            self._anchor, self._power_w = (at, energy_wh), None
            return None
        elapsed = at - anchor[0]
        if elapsed >= self.span_s:
            self._power_w = (energy_wh - anchor[1]) * 3600.0 / elapsed
            self._anchor = (at, energy_wh)
        return self._power_w
