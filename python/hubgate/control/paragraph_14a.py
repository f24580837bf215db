"""German §14a EnWG: the power a dimmed site keeps for its controllable consumption devices.

The rule is the Bundesnetzagentur's Festlegung BK6-22-300 of 27 November 2023 (in
force 1 January 2024), Anlage 1:

- Ziff. 2.4.1: a controllable consumption device (steuVE) is a non-public charge
  point, a heat pump, room cooling or a battery (charging) with a grid connection
  power of *more than* 4.2 kW in low voltage. A device of 4.2 kW or less is no
  steuVE and is not counted.
- Ziff. 4.5.1, direct control: every steuVE keeps 4.2 kW while dimmed (heat pumps
  and cooling above 11 kW: 0.4 x their rating; hubgate controls charge points).
- Ziff. 4.5.2, control through one energy-management system (EMS): the steuVE
  behind it keep together P_min,14a = 4.2 kW + (n - 1) x GZF x 4.2 kW, n their
  number and GZF the simultaneity factor of `SIMULTANEITY_FACTORS`.
- Ziff. 2.3: what is dimmed is the devices' grid-effective draw, so local
  generation (PV, a discharging battery) may be used on top of the minimum.

In a site file a charger marked `paragraph_14a` is one device (all its connectors
together), a marked connector one of its own; `grid_operator.paragraph_14a_floor`
picks the EMS formula (default, hubgate is the EMS) or the per-device minimum.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hubgate.config.model import Paragraph14aFloor, PhaseMode, SiteConfig

MINIMUM_KW = 4.2
"""Ziff. 4.5.1 Satz 1: the power each steuVE keeps while dimmed."""

THRESHOLD_KW = 4.2
"""Ziff. 2.4.1: a device must have more than this to be a steuVE (the same figure,
another provision)."""

SIMULTANEITY_FACTORS = (0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.5, 0.45)
"""Ziff. 4.5.2: the GZF for n = 2, 3, ... 8 devices, and 9 or more."""


def simultaneity_factor(n: int) -> float:
    """The GZF for `n` devices behind one EMS (1.0 for one: its term is zero anyway)."""
    if n < 2:
        return 1.0
    return SIMULTANEITY_FACTORS[min(n, 9) - 2]


def ems_minimum_kw(n: int) -> float:
    """P_min,14a for `n` steuVE controlled through one EMS (Ziff. 4.5.2); 0 for none."""
    if n < 1:
        return 0.0
    return MINIMUM_KW + (n - 1) * simultaneity_factor(n) * MINIMUM_KW


@dataclass(frozen=True)
class ControllableDevice:
    """One steuVE: a marked charger (all its connectors) or a marked connector."""

    name: str
    connectors: tuple[int, ...]
    """Indices in the allocator's connector order."""
    rated_kw: float
    """Its grid connection power: what its connectors can draw together at most."""


class Paragraph14a:
    """The §14a minimum of one site's controllable devices, each cycle."""

    def __init__(self, devices: Sequence[ControllableDevice], floor: Paragraph14aFloor) -> None:
        self.devices = tuple(d for d in devices if d.rated_kw > THRESHOLD_KW)
        """The steuVE: marked devices of more than 4.2 kW."""
        self.floor = floor
        self.minimum_kw = (
            ems_minimum_kw(len(self.devices))
            if floor is Paragraph14aFloor.EMS
            else MINIMUM_KW * len(self.devices)
        )
        """What all devices keep together when every one of them wants power."""

    @classmethod
    def of_site(
        cls, site: SiteConfig, connector_keys: Sequence[tuple[str, int]]
    ) -> Paragraph14a | None:
        """The site's marked chargers and connectors (None: no §14a on this site)."""
        operator = site.grid_operator
        if operator is None:
            return None
        index = {key: i for i, key in enumerate(connector_keys)}
        voltage = site.grid.voltage_v
        devices = []
        for charger in site.chargers:
            groups = (
                [(charger.id, charger.connectors)]
                if charger.paragraph_14a
                else [(f"{charger.id}#{c.id}", (c,)) for c in charger.connectors if c.paragraph_14a]
            )
            for name, connectors in groups:
                rated_w = sum(
                    c.max_current_a * (1 if c.phases is PhaseMode.ONE_PHASE else 3) * voltage
                    for c in connectors
                )
                devices.append(
                    ControllableDevice(
                        name,
                        tuple(index[(charger.id, c.id)] for c in connectors),
                        rated_w / 1000,
                    )
                )
        if not devices:
            return None
        return cls(devices, operator.paragraph_14a_floor)

    def floor_w(self, wanting: Sequence[int]) -> float:
        """The minimum of the devices that want power now: the rule's figure, but never
        more than they can draw (so it is no room for unmarked connectors)."""
        wanted = [d for d in self.devices if any(wanting[i] for i in d.connectors)]
        if self.floor is Paragraph14aFloor.PER_DEVICE:
            return sum(min(MINIMUM_KW, d.rated_kw) for d in wanted) * 1000
        return min(self.minimum_kw, sum(d.rated_kw for d in wanted)) * 1000

    def operator_limit_w(self, limit_w: float, base_w: float, wanting: Sequence[int]) -> float:
        """The grid operator's limit on the connection as the EVs get it: never so low that
        the devices keep less than their minimum on top of what the rest of the site
        generates (`base_w`: the connection's load without the EVs, negative when PV or
        the battery cover more than it; Ziff. 2.3)."""
        return max(limit_w, self.floor_w(wanting) + max(base_w, 0.0))
