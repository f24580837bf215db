"""The common device model: readings keyed by quantity, commands by intent.

A Modbus device driven by its firmware profile and an OCPP charge point both
appear to the control loop through these types, so the loop never needs to
know registers or messages. Beyond `Device` and `Charger`, a device may offer
what only some do: a per-cycle read of its control fields (`CycleSensed`),
link statistics (`LinkMonitored`), or a session behind it (`SessionCharger`);
the loop asks for these by protocol, never by adapter class. Readings carry the time they were taken
(monotonic seconds, the Trio clock) so staleness is judged in one place.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from hubgate.modbus.codec import FieldValue, ReadPlan
from hubgate.modbus.master import ModbusDevice
from hubgate.modbus.stats import RequestStats
from hubgate.ocpp.link_stats import OcppLinkStats
from hubgate.profiles.model import IecState, Quantity


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
    state_at: float | None = None
    """When `state` last changed, if it was reported apart from and after the values
    (an OCPP status arrives before the MeterValues showing its current); None: with them."""

    def state_newer_than_values(self) -> bool:
        """Whether the state changed after the values were read (their draw is unknown)."""
        return self.state_at is not None and self.state_at > self.at

    def measured_current(self) -> bool:
        """Whether it carries a phase current (an OCPP station's status before its first
        MeterValues carries none: its draw is not known, not 0)."""
        return not self.values.keys().isdisjoint(_PHASE_CURRENTS)

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


@dataclass(frozen=True)
class ChargingTransaction:
    """A charger's transaction on a connector, as it reported it (for the session record)."""

    transaction_id: str
    id_token: str | None
    stopped: bool = False
    stop_reason: str | None = None


@runtime_checkable
class TransactionReporting(Protocol):
    """A charger that reports its transactions (OCPP)."""

    def transaction(self) -> ChargingTransaction | None:
        """The connector's latest transaction, None before the first."""


@dataclass(frozen=True)
class LimitCheck:
    """Whether a charger was seen applying the limits it is sent.

    `following` None: not checked (yet); False: it was caught drawing or scheduling
    more than it was sent, or refusing every limit; `evidence` says what was seen."""

    following: bool | None = None
    evidence: str = ""


NOT_CHECKED = LimitCheck()
"""The check of a charger that is not checked (its setpoint read back instead), made once
(the loop reads every charger's check every cycle)."""


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

    @property
    def limit_check(self) -> LimitCheck:
        """What is known of whether it applies its limits; a charger not following them
        is reserved at its maximum."""


@dataclass(frozen=True)
class PlannedRead:
    """One cycle's read of a Modbus device as a plan, for reading many devices' plans
    together (`hubgate.modbus.plan_group`), and what makes the reading of its values."""

    link: ModbusDevice
    plan: ReadPlan
    finish: Callable[[list[FieldValue], float], Reading]
    """The reading of the plan's values, read at (or after) the time given."""


class CycleRead(Protocol):
    """A device's read every cycle (`hubgate.devices.sensing.CycleReader`)."""

    async def read(self) -> Reading:
        """This cycle's reading."""

    def planned(self) -> PlannedRead | None:
        """This cycle's read as a plan, when it is one; else use `read`."""


@runtime_checkable
class CycleSensed(Protocol):
    """A device whose control fields can be read on their own every cycle (a profiled
    Modbus charger or meter), the rest less often."""

    def cycle_reader(self, full_every: int) -> CycleRead:
        """The read to run every cycle: control fields fresh, every field on each
        `full_every`-th read (`hubgate.devices.sensing.CycleReader`)."""


@runtime_checkable
class LinkMonitored(Protocol):
    """A device behind a link that counts its requests, errors and latency."""

    @property
    def link_stats(self) -> RequestStats:
        """This device's request statistics."""


@runtime_checkable
class MessageMonitored(Protocol):
    """A device that sends on its own (an OCPP charger): when it last did, how often."""

    @property
    def messages(self) -> OcppLinkStats:
        """Its link's frames and our calls."""


@runtime_checkable
class Sampled(Protocol):
    """A device that reports its values at its own pace (an OCPP charger's MeterValues)."""

    @property
    def stale_after_s(self) -> float:
        """How old its values may be before they count as stale."""


@runtime_checkable
class DeviceFailsafe(Protocol):
    """A device whose own failsafe hubgate knows (from its firmware profile)."""

    @property
    def device_failsafe(self) -> bool:
        """Whether the device falls back on its own when hubgate stops commanding it
        (False: it keeps its last setpoint)."""


@runtime_checkable
class FixedFailsafe(Protocol):
    """A charger that may not take every failsafe current hubgate shares out (a Modbus
    charger, from its firmware profile); one that is not such takes any, 0 A included."""

    def fixed_failsafe_a(self, failsafe_current_a: float) -> float | None:
        """What it falls back to whatever it is asked, with the site's `failsafe_current_a`
        (None: it takes any failsafe current)."""


@dataclass(frozen=True)
class HeldCurrent:
    """The fallback current a charger's device holds whatever hubgate asks, as read."""

    current_a: float
    where: str
    """Where it is held and set: 'register 1212, set in ACE Service Installer'."""


@runtime_checkable
class HeldFallback(Protocol):
    """A charger whose device holds its fallback current in a register hubgate reads but
    cannot write (a Modbus charger whose profile says so, `profiles.held`)."""

    def held_fallback(self) -> HeldCurrent | None:
        """What `configure_failsafe` last read (None: not read yet, or not held)."""


@runtime_checkable
class SessionCharger(Protocol):
    """A charger behind a protocol session (an OCPP charge point).

    It reports on its own, so the control loop takes its `latest` report at once
    instead of reading it; it paces its own commands (deadband, rate limit, lease
    renewal), so the loop hands it its setpoint also unchanged (every cycle, or when it
    says it comes due: `HeldLimit`); and the operator can start and stop its sessions.
    """

    def latest(self) -> Reading:
        """What it last reported, at once; raises a `HubgateError` while it is offline."""

    async def remote_start(self, id_tag: str) -> str | None:
        """Ask it to start a session for `id_tag`: its answer ("Accepted", "Rejected"),
        None while it is offline."""

    async def remote_stop(self) -> str | None:
        """Ask it to stop its session: its answer, None when there is none to stop
        (offline, or no transaction)."""


@runtime_checkable
class HeldLimit(Protocol):
    """A charger that paces its own commands (a `SessionCharger`) and knows at once when a
    setpoint would send nothing: the control loop then takes the limit in force without
    starting a task for it; nor asks it again before `quiet_until` while the setpoint
    stays the same."""

    quiet_until: float
    """Until when (Trio's clock) the setpoint last asked (`limit_in_force`, `set_limit`)
    sends nothing more, by what was known when it was asked; -inf: ask again."""
    due_again: Callable[[], None]
    """Set by the loop; the charger calls it when something it learnt since may make the
    setpoint due before `quiet_until` (a new connection, a new report)."""

    def limit_in_force(self, current_a: float, phases: int) -> AppliedLimit | None:
        """The limit in force when `set_limit(current_a, phases)` would send nothing now;
        None when it must be called."""

    def joins_turn(self, current_a: float, phases: int) -> bool:
        """Whether `set_limit(current_a, phases)` would only wait for an exchange that waits
        for its turn already (and sends the newest setpoint when it comes): the setpoint is
        left with it at once, without a task, and its outcome comes in a later cycle."""


@dataclass(frozen=True, eq=False)
class ChargingNeeds:
    """What an EV said it needs (OCPP 2.x NotifyEVChargingNeeds): each report a new object."""

    energy_wh: float | None
    departure: datetime | None
    """Aware; None when the EV gave no departure time."""
    max_current_a: float | None = None
    """AC: the most the EV takes per phase (evMaxCurrent), None when not given."""


@runtime_checkable
class ReportsChargingNeeds(Protocol):
    """A charger whose sessions say who charges (the transaction's id token) and whose EVs
    may state their energy need and departure (ISO 15118 over OCPP 2.x)."""

    def charging_needs(self) -> ChargingNeeds | None:
        """The current session's last report, None without one."""

    def id_token(self) -> str | None:
        """The id token of the current transaction, None without one."""


@dataclass(frozen=True)
class BatteryReading:
    """The battery as last read: state of charge and power (positive = discharging)."""

    at: float
    soc_percent: float
    power_w: float


@dataclass(frozen=True)
class BatteryCommandResult:
    """The limits the battery confirmed (read back), in W."""

    charge_w: float
    discharge_w: float

    @property
    def power_w(self) -> float:
        """The command in force: positive discharges."""
        return self.discharge_w - self.charge_w


class Battery(Protocol):
    """What the control loop needs of a stationary battery."""

    @property
    def id(self) -> str:
        """The device id from the site file."""

    @property
    def max_charge_w(self) -> float:
        """The most it can be told to charge at (0: it cannot be told to charge)."""

    @property
    def max_discharge_w(self) -> float:
        """The most it can be told to discharge at (0: it cannot be told to discharge)."""

    async def read(self) -> Reading:
        """Every field once (`hubgate.devices.storage.battery_state` turns it into SoC
        and power)."""

    async def command(self, power_w: float) -> BatteryCommandResult:
        """Discharge (positive), charge (negative) or idle (0); what it confirmed."""


@runtime_checkable
class Curtailable(Protocol):
    """A PV inverter whose output may be capped (a `Device` too)."""

    @property
    def curtailable(self) -> bool:
        """Whether its output can be capped."""

    async def curtail(self, power_w: float | None, fallback_w: float | None = None) -> float | None:
        """Cap the output at `power_w` (None: no cap), with `fallback_w` the cap it falls
        back to without the gateway where it can be told one (None: no cap); the cap in
        force, read back (W; None when none is)."""
