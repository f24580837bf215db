"""Per-cycle reads of a profiled device: what control needs every cycle, the rest every Nth.

    reader = CycleReader(driver, full_every=10)   # full reads staggered by device
    reading = await reader.read()       # phase currents and state fresh; energy, voltages...
                                        # carried from the last full read (`Reading.older`)

A charger's control fields are its phase currents (when it measures none: its power,
else its energy register, and its phases in use) and its state field, a
meter's its phase currents, phase powers (their direction: a phase feeding
back counts negative in the site's balance) and total power (the grid import,
signed, for the battery and PV budget); other kinds (grid-operator box, battery,
inverter), and devices whose control fields take as many requests as all
fields, are read in full every time. Both sets are compiled once into read
plans by the Rust planner. Every `full_every`-th read takes every field (the
first read always does), staggered by device so a site's full reads spread
over the cycles; in between, the other fields are carried from the last full
read with the time they were taken. A control field is never carried.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import trio

from hubgate.devices.model import PlannedRead, Reading
from hubgate.modbus.codec import FieldValue, ReadPlan
from hubgate.profiles.codec_fields import read_plan
from hubgate.profiles.model import DeviceKind, Profile, Quantity
from hubgate.profiles.plan import field_specs

if TYPE_CHECKING:
    from hubgate.devices.profile_driver import ProfileDevice

FULL_EVERY = 10
"""Reads per full read, by default."""

PHASE_CURRENTS = frozenset({Quantity.CURRENT_L1, Quantity.CURRENT_L2, Quantity.CURRENT_L3})
PHASE_POWERS = frozenset({Quantity.POWER_L1, Quantity.POWER_L2, Quantity.POWER_L3})
"""A meter's phase powers give its currents their direction (`Reading.signed_phase_currents`)."""


def control_quantities(profile: Profile) -> frozenset[Quantity] | None:
    """The fields control reads every cycle; None when it needs every field."""
    if profile.kind is DeviceKind.CHARGER:
        state = () if profile.states is None else (profile.states.field,)
        return frozenset(_drawn(profile)) | frozenset(state)
    if profile.kind is DeviceKind.METER:
        return PHASE_CURRENTS | PHASE_POWERS | {Quantity.POWER_TOTAL}
    return None


def _drawn(profile: Profile) -> frozenset[Quantity]:
    """What a charger's current is read or derived from (`devices.derived_current`): its
    phase currents, else its power, else its energy register, with its phases in use."""
    fields = profile.fields.keys()
    if PHASE_CURRENTS & fields:
        return PHASE_CURRENTS
    source = Quantity.POWER_TOTAL if Quantity.POWER_TOTAL in fields else Quantity.ENERGY_IMPORT
    return frozenset({source, Quantity.PHASES_ACTIVE} & fields)


class CycleReader:
    """Reads one profiled device for the control loop (see the module docstring)."""

    def __init__(
        self, device: ProfileDevice, *, full_every: int = FULL_EVERY, offset: int | None = None
    ) -> None:
        if full_every < 1:
            raise ValueError(f"full_every is 1 or more, not {full_every}")
        self.device = device
        self.full_every = full_every
        self._control = control_quantities(device.profile)
        self._fast: tuple[list[Quantity], ReadPlan] | None = None
        self._last_full: Reading | None = None
        if offset is None:
            offset = zlib.crc32(f"{device.link.name}/{device.id}".encode()) % full_every
        self._count = offset
        """Reads so far, from an offset per device so full reads spread over the cycles."""
        self._full_read: tuple[object, PlannedRead] | None = None
        """The full read's plan and what it was made for (the device's compiled plan)."""
        self._fresh_read: tuple[Reading, PlannedRead] | None = None
        """The read of the control fields and the full reading it carries the rest from."""
        self._carried: tuple[Reading, frozenset[Quantity], _Carried] | None = None
        """What a reading of the control fields carries from that full reading, and the
        quantities the fresh one had (`_fresh`)."""

    async def plan(self) -> tuple[list[Quantity], ReadPlan] | None:
        """The control fields and their plan; None when every read is a full one."""
        if self._fast is None and self._control is not None:
            specs = field_specs(self.device.profile, await self.device.blocks())
            fast = {name: spec for name, spec in specs.items() if Quantity(name) in self._control}
            _, full = await self.device.plan()
            plan = read_plan(self.device.profile, fast)
            if fast and len(plan.requests) < len(full.requests):
                self._fast = ([Quantity(name) for name in fast], plan)
            else:  # no control field, or no request saved
                self._control = None
        return self._fast

    async def read(self) -> Reading:
        """This cycle's reading: control fields fresh, the rest fresh on every Nth read."""
        await self.plan()
        await self.device.plan()
        planned = self.planned()
        assert planned is not None
        at = trio.current_time()
        return planned.finish(await self.device.link.read_plan(planned.plan), at)

    def planned(self) -> PlannedRead | None:
        """This cycle's read as a plan to read with other devices' (`read` does it alone)
        and what makes its reading; None until `read` compiled the plans (the first read,
        which may discover SunSpec blocks)."""
        full = self.device.compiled_plan
        if full is None or (self._control is not None and self._fast is None):
            return None
        due = self._count % self.full_every == 0
        self._count += 1
        last = self._last_full
        fast = self._fast
        if fast is None or last is None or due:
            kept_full = self._full_read
            if kept_full is None or kept_full[0] is not full:
                quantities, plan = full
                read = PlannedRead(self.device.link, plan, partial(self._full, quantities))
                kept_full = self._full_read = (full, read)
            return kept_full[1]
        kept = self._fresh_read
        if kept is None or kept[0] is not last:
            quantities, plan = fast
            read = PlannedRead(self.device.link, plan, partial(self._fresh, quantities, last))
            kept = self._fresh_read = (last, read)
        return kept[1]

    def _full(self, quantities: list[Quantity], decoded: list[FieldValue], at: float) -> Reading:
        reading = self.device.reading(quantities, decoded, at)
        self._last_full = reading
        return reading

    def _fresh(
        self, quantities: list[Quantity], last: Reading, decoded: list[FieldValue], at: float
    ) -> Reading:
        fresh = self.device.reading(quantities, decoded, at)
        kept = self._carried
        if kept is None or kept[0] is not last or fresh.values.keys() != kept[1]:
            read = set(quantities) | set(fresh.values)  # with what the driver derived
            values = {q: v for q, v in last.values.items() if q not in read}
            text = {q: t for q, t in last.text.items() if q not in read}
            carried = _Carried(values, text, dict.fromkeys((*values, *text), last.at))
            kept = self._carried = (last, frozenset(fresh.values), carried)
        carried = kept[2]
        new, new_text = fresh.values, fresh.text  # (the driver's own: not copied again)
        return Reading(
            fresh.at,
            {**carried.values, **new} if carried.values else new,
            fresh.state,
            {**carried.text, **new_text} if carried.text else new_text,
            carried.older,
        )


@dataclass(frozen=True, slots=True)
class _Carried:
    """What a reading of the control fields carries from the last full reading."""

    values: dict[Quantity, float | None]
    text: dict[Quantity, str]
    older: dict[Quantity, float]
