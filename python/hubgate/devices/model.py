"""The common device model: readings keyed by quantity, commands by intent.

A Modbus device driven by its firmware profile and an OCPP charge point both
appear to the control loop through these types, so the loop never needs to
know registers or messages. Readings carry the time they were taken
(monotonic seconds, the Trio clock) so staleness is judged in one place.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from hubgate.profiles.model import Quantity


class IecState(StrEnum):
    """IEC 61851 control-pilot states."""

    A = "A"
    """No vehicle."""
    B = "B"
    """Vehicle connected, not charging."""
    C = "C"
    """Charging."""
    D = "D"
    """Charging with ventilation."""
    E = "E"
    """No power (short circuit, EVSE off)."""
    F = "F"
    """Fault."""


@dataclass(frozen=True)
class Reading:
    """What one read of a device returned, at monotonic time `at`.

    `values` holds every quantity the device gave; a quantity the device
    reported as "not available" (a sentinel) is present with value None.
    `older` names the values (and texts) carried over from an earlier read,
    with the time each was read (`hubgate.devices.sensing`); all others were read at `at`.
    """

    at: float
    values: Mapping[Quantity, float | None] = field(default_factory=dict)
    state: IecState | None = None
    text: Mapping[Quantity, str] = field(default_factory=dict)
    older: Mapping[Quantity, float] = field(default_factory=dict)

    def get(self, quantity: Quantity) -> float | None:
        """The value of `quantity`, None when missing or not available."""
        return self.values.get(quantity)

    def phase_currents(self) -> tuple[float, float, float] | None:
        """Per-phase current (A) when all three phases were read at `at`."""
        if self.older and not self.older.keys().isdisjoint(_PHASE_CURRENTS):
            return None
        l1 = self.values.get(Quantity.CURRENT_L1)
        l2 = self.values.get(Quantity.CURRENT_L2)
        l3 = self.values.get(Quantity.CURRENT_L3)
        if l1 is None or l2 is None or l3 is None:
            return None
        return (l1, l2, l3)

    def signed_phase_currents(self) -> tuple[float, float, float] | None:
        """`phase_currents`, each negative where its phase's power, read with it, shows the
        phase feeding back (meters may report a current as a magnitude); as read where the
        phase powers are missing or older."""
        currents = self.phase_currents()
        if currents is None:
            return None
        signed = list(currents)
        for p, quantity in enumerate(_PHASE_POWERS):
            power = self.values.get(quantity)
            if power is not None and quantity not in self.older:
                signed[p] = math.copysign(abs(currents[p]), power) if power else currents[p]
        return (signed[0], signed[1], signed[2])


_PHASE_CURRENTS = (Quantity.CURRENT_L1, Quantity.CURRENT_L2, Quantity.CURRENT_L3)
_PHASE_POWERS = (Quantity.POWER_L1, Quantity.POWER_L2, Quantity.POWER_L3)


@dataclass(frozen=True)
class AppliedLimit:
    """A limit as the device confirmed it (read back after writing)."""

    current_a: float
    """Per-phase current the device now allows; 0 when paused."""
    phases: int
    paused: bool
    at: float


class Device(Protocol):
    """Anything the control loop reads."""

    @property
    def id(self) -> str:
        """The device id from the site file."""

    async def read(self) -> Reading:
        """Read every field of the device once."""


class Charger(Device, Protocol):
    """A device whose charging current the control loop sets."""

    async def set_limit(self, current_a: float, phases: int) -> AppliedLimit:
        """Allow `current_a` per phase on `phases` phases (0 A pauses), honouring
        the device's minimum, step and pause semantics; returns what it read back."""

    async def configure_failsafe(self, timeout_s: float, failsafe_current_a: float) -> None:
        """Set the device's own communication timeout and failsafe current, and verify them."""

    async def heartbeat(self) -> None:
        """Feed the device-side watchdog (a no-op where plain traffic is enough)."""

    @property
    def heartbeat_period_s(self) -> float | None:
        """How often `heartbeat` must run, None when the device has no watchdog."""
