"""An OCPP charge point as the control loop's `Charger` (hubgate.devices.model).

Readings come from what the station last reported (MeterValues, status); limits go
out as leased charging profiles (`smart_charging`) in the unit the charger takes,
so the control loop drives OCPP and Modbus chargers alike: `configure_failsafe`
sets the lease and the failsafe current, `heartbeat` renews the lease before it runs
out. Beyond what the charger says (`station_care`):

- **State before values.** A status, a transaction start or a 2.x charging state
  is carried with the time it changed (`Reading.state_at`), so a start is known
  before the first MeterValues show its current.
- **Derived currents.** A charger that reports no current gets it from its power
  on the phases of its last setpoint (`devices.derived_current`, with its accuracy).
  From its energy register alone it gets the average power between the last two
  readings: lagging by half the reporting interval (30 s at 60 s), ±1 Wh per reading
  (±0.05 A at 60 s on three phases).
- **Stale values.** A charging connector whose values are older than two sample
  intervals is asked for new ones (TriggerMessage MeterValues), at most once an interval.
- **Verify, then trust.** Shortly after the first lease of each connection, and every
  `LeaseSettings.verify_every_s`, the composite schedule is read back (`ProfileLease.verify`,
  from `upkeep`, which the station's own task runs when it is due). A
  charger that schedules more than it was sent, refuses every profile purpose, can
  hold no lease, or draws more than its limit for `overdraw_for_s` once the EV had
  `settle_s` to follow (`LeaseSettings`) (go-e accepts profiles and ignores them,
  goecharger/go-eCharger-API-v2#249) is "not following" (`limit_check`): the loop
  reserves its maximum. A check stands until the next one (a new lease, after a
  reconnection, is checked soon after its first limit); one found not following is checked
  again after a back-off (`LeaseSettings.recheck_after_s`), not with every lease; caught
  drawing too much, it stays not following while hubgate runs.
"""

from __future__ import annotations

import logging
import math
import operator
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Literal

import trio

from hubgate.config.model import DcConnector
from hubgate.devices.derived_current import currents_from_power, mean_voltage
from hubgate.devices.errors import NotReadyError
from hubgate.devices.model import (
    AppliedLimit,
    ChargingNeeds,
    ChargingTransaction,
    LimitCheck,
    Reading,
)
from hubgate.modbus.stats import RequestStats
from hubgate.ocpp.capabilities import Capabilities
from hubgate.ocpp.composite_check import Verification
from hubgate.ocpp.errors import OcppCallError, OcppCallTimeoutError, OcppSessionClosedError
from hubgate.ocpp.iec_state import CHARGING_CURRENT_A, iec_state
from hubgate.ocpp.link_stats import OcppLinkStats
from hubgate.ocpp.operations import ChargerOperations
from hubgate.ocpp.registry import ConnectorState, Station
from hubgate.ocpp.session import OcppSession
from hubgate.ocpp.smart_charging import (
    NOMINAL_VOLTAGE_V,
    LeaseMode,
    LeaseSettings,
    ProfileLease,
    Setpoint,
    lease_for_session,
)
from hubgate.ocpp.station_care import StationCare
from hubgate.profiles.model import IecState, Quantity

LOG = logging.getLogger("hubgate.ocpp")

OVERDRAW_MARGIN_A = 2.0
"""Draw above the limit by more than this (or 10 %, whichever is more) is overdraw."""
STALE_INTERVALS = 2.0
"""A charging connector's values older than this many sample intervals are asked for."""

CALL_FAILED = (OcppCallError, OcppCallTimeoutError, OcppSessionClosedError)
PhaseCurrents = tuple[float | None, float | None, float | None]


class OcppCharger:
    """One connector of an OCPP station, driven like any other charger.

    The limit applies to the whole station (connector 0, the station-maximum
    purpose) when `whole_station` is set, which suits single-connector chargers;
    otherwise to `connector_id` alone (TxDefault on that connector). The connectors
    of one station share its `care`.
    """

    def __init__(
        self,
        station: Station,
        *,
        connector_id: int = 1,
        whole_station: bool = True,
        settings: LeaseSettings | None = None,
        care: StationCare | None = None,
        voltage_v: float = NOMINAL_VOLTAGE_V,
        dc: DcConnector | None = None,
    ) -> None:
        self.station = station
        self.connector_id = connector_id
        self.settings = settings or LeaseSettings()
        self.care = care or StationCare(station)
        self.care.kept.append(self)
        self.voltage_v = voltage_v
        """Nominal phase voltage, where the charger reports none."""
        self.dc = dc
        """A DC connector: limits in W of DC power, its AC current from its power."""
        self._lease_connector = 0 if whole_station else connector_id
        self.care.lease_targets.add(self._lease_connector)
        self._lease: ProfileLease | None = None
        self._leased_on: OcppSession | None = None
        """The connection of the last lease (a new failsafe drops `_lease`, not this)."""
        self._verification: Verification | None = None
        self._verify_at: float | None = None
        self._distrusted = 0
        """Checks in a row that found it not following (their back-off)."""
        self._refused: str | None = None
        self._limit_changed_at = -math.inf
        self._watched_at: float | None = None
        self._over_since: float | None = None
        self._triggered_at = -math.inf
        self._zero_since: float | None = None
        """Since when its setpoint is 0 A (None: it is not)."""
        self._switching: tuple[int, float] | None = None
        """While switching phases: (new phases, end of the pause at 0 A)."""
        self._wanted: tuple[float, int] | None = None  # (the last asked of `set_limit`)
        self._transaction: tuple[tuple[object, ...], ChargingTransaction] | None = None
        """The last transaction `transaction` made and what it was made of."""
        self._latest: tuple[tuple[object, ...], Reading] | None = None
        """The last reading `latest` made and what it was made of."""
        self._watts: tuple[Capabilities, Capabilities] | None = None
        """The station's capabilities and the same in watts (`_in_watts`)."""
        self.quiet_until = -math.inf  # (`devices.model.HeldLimit`, as `due_again`)
        self.due_again: Callable[[], None] = lambda: None  # (the loop sets it)
        self._state: tuple[object, ...] = (None, None, None)  # (`latest`'s: status, ...)

    @property
    def id(self) -> str:
        """The charger id from the site file."""
        return self.station.admission.charger_id

    def transaction(self) -> ChargingTransaction | None:
        """The connector's transaction as the station reported it (`TransactionReporting`;
        the same object until it changes: the loop asks every cycle)."""
        tx = self.station.connector(self.connector_id).transaction
        if tx is None:
            return None
        made_of = (tx, tx.id_token, tx.stopped, tx.stop_reason)
        known = self._transaction
        if known is not None and _same(known[0], made_of):
            return known[1]
        reported = ChargingTransaction(
            tx.transaction_id, tx.id_token, tx.stopped is not None, tx.stop_reason
        )
        self._transaction = (made_of, reported)
        return reported

    @property
    def _sample_interval_s(self) -> float:
        provisioning = self.care.provisioning
        return self.care.sample_interval_s if provisioning is None else provisioning.interval_s

    @property
    def stale_after_s(self) -> float:
        """Values older than `STALE_INTERVALS` sample intervals are stale (and asked for)."""
        return STALE_INTERVALS * self._sample_interval_s

    @property
    def link_stats(self) -> RequestStats:
        """Our calls to its station (all its connectors'), across its connections."""
        return self.station.link.calls

    @property
    def messages(self) -> OcppLinkStats:
        """What its station sends and how it answers (`devices.model.MessageMonitored`)."""
        return self.station.link

    @property
    def heartbeat_period_s(self) -> float | None:
        """Half the renewal margin, so the lease is renewed before it runs out."""
        return self.settings.renew_before_s / 2

    def heartbeat_quiet_for_s(self) -> float:
        """How long `heartbeat` would renew nothing (`control.heartbeats.QuietBeat`)."""
        lease = None if self.station.session is None else self._current_lease()
        last = None if lease is None else lease.planner.last
        return 0.0 if lease is None or last is None else lease.quiet_for_s(last)

    @property
    def limit_check(self) -> LimitCheck:
        """Not following when caught (module docstring); else the last verification."""
        caught = self.care.caught.get(self.connector_id)
        if caught is not None:
            return LimitCheck(False, caught)
        if self._refused is not None:
            return LimitCheck(False, self._refused)
        lease = self._lease
        if lease is not None and lease.mode is None:
            return LimitCheck(False, "holds no lease (one stack level, one schedule period)")
        checked = self._verification
        return LimitCheck() if checked is None else LimitCheck(checked.following, checked.evidence)

    @property
    def verification(self) -> Verification | None:
        """The last composite-schedule check (None before one); it stands across leases."""
        return self._verification

    @property
    def lease(self) -> ProfileLease | None:
        """The lease of the current connection (None before the first command)."""
        return self._lease

    def _session(self) -> OcppSession:
        session = self.station.session
        if session is None:
            raise OcppSessionClosedError(f"{self.station.identity}: not connected")
        return session

    @property
    def shares_station_limit(self) -> bool:
        """Whether its limit is its share of one station-wide limit (the station refuses
        per-connector profiles)."""
        return self._lease_connector != 0 and self.care.station_wide

    def _current_lease(self) -> ProfileLease:
        """The lease of the current connection, with what is known of the charger."""
        session = self._session()
        capabilities = self.care.capabilities
        if self.shares_station_limit:
            lease = self.care.shared_lease(session, self.settings)
        else:
            found = lease_for_session(
                self._lease,
                session,
                connector_id=self._lease_connector,
                settings=self.settings,
                capabilities=capabilities,
            )
            assert found is not None, "the session is open"
            lease = found
        if lease is not self._lease:  # a new lease: verify it soon after its first limit
            # (what the last check saw stands until then: a charger caught applying more
            # than it was sent is not trusted again before a check says it follows); one
            # found not following keeps its back-off on the same connection
            if lease.session is not self._leased_on or not self._distrusted:
                self._verify_at = None
            self._lease, self._leased_on = lease, lease.session
        if self.dc is not None:  # its limits are DC power, whatever else it takes
            capabilities = self._in_watts(capabilities)
        lease.capabilities = capabilities
        lease.leases = 1 if self.shares_station_limit else len(self.care.lease_targets)
        lease.origin = self._transaction_origin
        return lease

    def _in_watts(self, capabilities: Capabilities) -> Capabilities:
        """`capabilities` taking watts only (a DC connector's), made once per capabilities."""
        known = self._watts
        if known is None or known[0] is not capabilities:
            known = self._watts = (capabilities, replace(capabilities, rate_units=("W",)))
        return known[1]

    def _transaction_origin(self) -> tuple[object, float]:
        """The connector's transaction and how long ago it started by the charger's count, at
        least (a relative lease counts from there): since hubgate heard of it, or since its
        stamp on the charger's clock (our clock plus the measured offset, which a message's
        delay only makes smaller); (None, 0) without one."""
        transaction = self.station.connector(self.connector_id).transaction
        if transaction is None:
            return None, 0.0
        elapsed = 0.0
        if transaction.seen_at is not None:
            elapsed = trio.current_time() - transaction.seen_at
        offset = self.station.clock.offset_s
        if transaction.started is not None and offset is not None:
            theirs = datetime.now(UTC) + timedelta(seconds=offset)
            elapsed = max(elapsed, (theirs - transaction.started).total_seconds())
        return transaction.transaction_id, max(elapsed, 0.0)

    # -- reading ---------------------------------------------------------------------

    async def read(self) -> Reading:
        """The connector's latest reported values; raises when the station is offline."""
        return self.latest()

    def charging_needs(self) -> ChargingNeeds | None:
        """The EV's last NotifyEVChargingNeeds in the current transaction (2.x), or None."""
        return self.station.connector(self.connector_id).charging_needs

    def id_token(self) -> str | None:
        """The id token of the connector's transaction, None without one."""
        transaction = self.station.connector(self.connector_id).transaction
        return None if transaction is None else transaction.id_token

    def latest(self) -> Reading:
        """The connector's latest reported values, at once; raises when the station is
        offline. The same `Reading` until the station reports something new (or another
        limit is in force): the loop asks every cycle, stations report every few seconds.
        One never measured has its values and state from its status alone, stamped now:
        they are made again only when its status or limit changes. A new connection, status
        or transaction may make its lease due: it tells the loop (`due_again`)."""
        session = self._session()
        if self._lease is not None and self._lease.session is not session:
            self.due_again()
        connector = self.station.connector(self.connector_id)
        m = connector.measurement
        last = self._lease.planner.last if self._lease is not None else None
        made_of = (
            connector,
            m,
            connector.measured_at,
            connector.status,
            connector.charging_state,
            connector.state_at,
            last,
        )
        known = self._latest
        if known is not None and _same(known[0], made_of):
            if connector.measured_at is None:  # (its state changed before now, if at all)
                return Reading(trio.current_time(), known[1].values, known[1].state)
            return known[1]
        reading = self._reading(connector, last)
        self._latest = (made_of, reading)
        state = (connector.status, connector.charging_state, connector.transaction)
        if not _same(state, self._state):  # (not every new measurement)
            self._state = state
            self.due_again()
        return reading

    def _reading(self, connector: ConnectorState, last: Setpoint | None) -> Reading:
        m = connector.measurement
        voltage = mean_voltage(m.voltage_v, self.voltage_v)
        if self.dc is None:
            currents = _currents(connector, voltage, last.phases if last is not None else 3)
        else:
            currents = _dc_currents(connector, self.dc, self.voltage_v)
        candidates: dict[Quantity, float | None] = {
            Quantity.CURRENT_L1: currents[0],
            Quantity.CURRENT_L2: currents[1],
            Quantity.CURRENT_L3: currents[2],
            Quantity.VOLTAGE_L1: m.voltage_v[0],
            Quantity.VOLTAGE_L2: m.voltage_v[1],
            Quantity.VOLTAGE_L3: m.voltage_v[2],
            Quantity.POWER_TOTAL: m.power_w,
            Quantity.ENERGY_IMPORT: m.energy_wh,
            Quantity.SOC: m.soc_percent,
        }
        values = {q: v for q, v in candidates.items() if v is not None}
        if last is not None:
            values[Quantity.APPLIED_CURRENT_LIMIT] = last.current_a
        self._watch_draw(connector, m.current_a if self.dc is None else currents)
        at = connector.measured_at if connector.measured_at is not None else trio.current_time()
        state_at = connector.state_at
        return Reading(
            at=at,
            values=values,
            state=iec_state(connector),
            state_at=state_at if state_at is not None and state_at > at else None,
        )

    def _watch_draw(self, connector: ConnectorState, measured: tuple[float | None, ...]) -> None:
        """Catch a connector that draws more than its limit once its EV had time to follow."""
        at = connector.measured_at
        last = self._lease.planner.last if self._lease is not None else None
        if at is None or at == self._watched_at or last is None:
            return
        self._watched_at = at
        currents = [c for c in measured if c is not None]
        if not currents or at < self._limit_changed_at + self.settings.settle_s:
            self._over_since = None
            return
        draw, limit = max(currents), last.current_a
        if self._lease is not None and at > self._lease.planner.sent_at + self.settings.lease_s:
            # measured after its lease had run out (a renewal came late): the failsafe is its
            # limit then, drawing it is no fault
            limit = max(limit, self.settings.failsafe_current_a)
        if draw <= limit + max(OVERDRAW_MARGIN_A, 0.1 * limit):
            self._over_since = None
            return
        if self._over_since is None:
            self._over_since = at
        if (
            at - self._over_since >= self.settings.overdraw_for_s
            and self.connector_id not in self.care.caught
        ):
            evidence = (
                f"draws {draw:.1f} A under a limit of {limit:g} A for {at - self._over_since:.0f} s"
            )
            LOG.warning("%s#%d: not following: %s", self.id, self.connector_id, evidence)
            self.care.caught[self.connector_id] = evidence

    # -- commanding ------------------------------------------------------------------

    def _failsafe(self) -> Setpoint:
        """The failsafe current as this connector's setpoint (its charger's terms)."""
        return self._setpoint(self.settings.failsafe_current_a, 3)

    def _setpoint(self, current_a: float, phases: int) -> Setpoint:
        """The setpoint with the measured voltage and the phases the EV draws on."""
        if self.dc is not None:
            return Setpoint(current_a, 3, dc_w_per_a=self.dc.dc_w(1.0, self.voltage_v))
        m = self.station.connector(self.connector_id).measurement
        drawing = [c for c in m.current_a if c is not None and c > CHARGING_CURRENT_A]
        return Setpoint(
            current_a,
            _phases(phases),
            voltage_v=mean_voltage(m.voltage_v, self.voltage_v),
            active_phases=len(drawing) or None,
        )

    async def set_limit(self, current_a: float, phases: int) -> AppliedLimit:
        """Send the limit when due (deadband, rate limit); returns the limit in force.

        The exchange runs in the station's own task (`StationCare.in_turn`): cut short, the
        caller leaves it to finish; one waits behind it at most, shared by later calls, and
        sends the latest setpoint. A station that refuses every purpose on a connector
        (TxDefaultProfile: some take only their station maximum, lbbrhzn/ocpp#221) gets
        one station-wide limit, the connectors' setpoints added up (`StationCare.share`)."""
        self._wanted = (current_a, phases)
        self.quiet_until = -math.inf  # (until an exchange says otherwise)
        return await self.care.in_turn(self.connector_id, self._send_wanted)

    def limit_in_force(self, current_a: float, phases: int) -> AppliedLimit | None:
        """The limit in force, at once and without a task, when `set_limit(current_a,
        phases)` would send nothing now (`devices.model.HeldLimit`): a lease of this
        connection that is not due (deadband, rate limit, renewal), no exchange in progress,
        no phase switch; None when `set_limit` must be called."""
        lease, session = self._lease, self.station.session
        if lease is None or session is None or lease.session is not session:
            return None
        if self.shares_station_limit or self._refused is not None:
            return None
        lease = self._current_lease()
        last = lease.planner.last
        # (whether it is due depends on its current and phases only: no voltage needed)
        asked = Setpoint(current_a, 3 if self.dc is not None else _phases(phases))
        setpoint = self._paused_for_switch(asked, lease)
        quiet_s = 0.0 if self._switching is not None else lease.quiet_for_s(setpoint)
        if last is None or quiet_s <= 0:
            return None  # (`set_limit` is due: it says again)
        self.quiet_until = (now := trio.current_time()) + quiet_s
        self._wanted = (current_a, phases)  # (what an exchange still waiting is to send)
        return AppliedLimit(
            current_a=last.current_a, phases=last.phases, paused=last.current_a <= 0, at=now
        )

    def joins_turn(self, current_a: float, phases: int) -> bool:
        """Whether `set_limit` would only join the exchange waiting its turn (`HeldLimit`)."""
        if waiting := self.care.waiting(self.connector_id):
            self._wanted, self.quiet_until = (current_a, phases), -math.inf
        return waiting

    async def _send_wanted(self) -> AppliedLimit:
        assert self._wanted is not None, "set_limit asks first"
        return await self._set_limit(*self._wanted)

    async def _set_limit(self, current_a: float, phases: int) -> AppliedLimit:
        lease = self._current_lease()
        setpoint = self._paused_for_switch(self._setpoint(current_a, phases), lease)
        before = lease.planner.last
        lapsed = self._lapsed(lease)
        try:
            sent = await lease.apply(
                self.care.share(self.connector_id, setpoint)
                if self.shares_station_limit
                else setpoint
            )
        except OcppCallError as error:
            if self._lease_connector != 0 and not self.care.station_wide:
                LOG.warning("%s: per-connector limits refused; one station-wide limit", self.id)
                self.care.station_wide = True
                return await self._set_limit(current_a, phases)
            self._refused = f"refuses every charging profile purpose ({error})"
            raise
        self._refused = None
        applied = lease.planner.last
        assert applied is not None, "apply either sent the setpoint or raised"
        now = trio.current_time()
        if sent and (lapsed or before is None or before.current_a != applied.current_a):
            self._limit_changed_at = now  # (after a lapse, from the failsafe back to it)
        if sent:
            self._sent(applied.current_a, now)
        if not self.shares_station_limit and self._switching is None:
            self.quiet_until = now + lease.quiet_for_s(setpoint)
        if applied.current_a <= 0 and self._zero_since is None:  # (a switch's pause from here)
            self._zero_since = now
        mine = setpoint if self.shares_station_limit else applied
        return AppliedLimit(
            current_a=mine.current_a,
            phases=mine.phases,
            paused=mine.current_a <= 0,
            at=now,
        )

    def _paused_for_switch(self, setpoint: Setpoint, lease: ProfileLease) -> Setpoint:
        """`setpoint`, or 0 A on the old phases while a 3/1 phase switch waits out its pause."""
        now = trio.current_time()
        last = lease.planner.last
        if last is None or self._lease_connector != lease.connector_id:
            return setpoint
        if last.current_a > 0:
            self._zero_since = None
        elif self._zero_since is None:
            self._zero_since = now
        if setpoint.phases != last.phases and self._switching is None:
            zero = self._zero_since
            if zero is None or now - zero < self.settings.phase_switch_pause_s:
                start = now if zero is None else zero
                self._switching = (setpoint.phases, start + self.settings.phase_switch_pause_s)
        if self._switching is not None:
            wanted, until = self._switching
            if now < until and wanted == setpoint.phases:
                return replace(setpoint, current_a=0.0, phases=last.phases)
            self._switching = None
        return setpoint

    def _sent(self, current_a: float, now: float) -> None:
        """A lease of `current_a` went out: check it soon when it is this connection's
        first, or the one that can show the lapse the last check could not see."""
        soon = now + self.settings.verify_after_s
        if self._verify_at is None:
            self._verify_at = soon
        elif not self._distrusted and self._lapse_unseen(current_a):
            self._verify_at = min(self._verify_at, soon)

    def _lapse_unseen(self, current_a: float) -> bool:
        """Whether the last check could not see the lease lapse (its setpoint was the
        failsafe) and `current_a`, now sent, would show it."""
        checked = self._verification
        return (
            checked is not None
            and checked.lapses is None
            and self.care.honours_valid_to is None
            and abs(current_a - self.settings.failsafe_current_a) > 0.5
        )

    async def remote_start(self, id_tag: str) -> str | None:
        """RemoteStart/RequestStartTransaction on this connector: the station's answer,
        None while it is offline."""
        session = self.station.session
        if session is None:
            return None
        return await ChargerOperations(session).remote_start(id_tag, self.connector_id)

    async def remote_stop(self) -> str | None:
        """RemoteStop/RequestStopTransaction of this connector's transaction: the station's
        answer, None when there is none to stop (offline, or no transaction)."""
        session = self.station.session
        transaction = self.station.connector(self.connector_id).transaction
        if session is None or transaction is None:
            return None
        return await ChargerOperations(session).remote_stop(transaction.transaction_id)

    async def configure_failsafe(self, timeout_s: float, failsafe_current_a: float) -> None:
        """Lease `timeout_s` and failsafe current; the base profile is installed at once
        (a lease of this connection with these settings is kept as it is).

        Raises `NotReadyError` while nothing is known of the charger yet (its first boot
        is still being attended to): then it is not commanded in a unit or shape it may
        refuse."""
        if not self.care.known:
            raise NotReadyError(
                f"{self.station.identity}: capabilities not read yet (waiting for its boot)"
            )
        settings = replace(
            self.settings,
            lease_s=timeout_s,
            renew_before_s=timeout_s / 3,
            failsafe_current_a=failsafe_current_a,
        )
        lease = self._lease
        if lease is None or lease.session is not self.station.session or settings != self.settings:
            self.settings, self._lease = settings, None
        await self.care.detached(self._install_base)  # (as set_limit's exchange)

    async def _install_base(self) -> None:
        try:  # (a base profile installed already is not sent again)
            await self._current_lease().install_base(self._failsafe())
        except OcppCallError:
            if self._lease_connector == 0 or self.care.station_wide:
                raise
            LOG.warning("%s: per-connector limits refused; one station-wide limit", self.id)
            self.care.station_wide = True
            await self._current_lease().install_base(self._failsafe())

    async def heartbeat(self) -> None:
        """Renew the lease when it is due (the control loop's watchdog feed)."""
        lease = self._current_lease()
        lapsed = self._lapsed(lease)
        if await lease.renew() and (last := lease.planner.last) is not None:
            now = trio.current_time()
            if lapsed:  # from the failsafe back to its limit: the EV needs time to follow
                self._limit_changed_at = now
            self._sent(last.current_a, now)

    def _lapsed(self, lease: ProfileLease) -> bool:
        """Whether `lease`'s last limit has run out (a renewal came late)."""
        return trio.current_time() > lease.planner.sent_at + self.settings.lease_s

    def upkeep_due(self, now: float) -> bool:
        """Whether `upkeep` has something to do now: a verification due or stale values
        to ask for (checked every second by `station_care.UpkeepTicks`, which wakes the
        station's task only then)."""
        lease = self._lease
        if lease is None or lease.session is not self.station.session:
            return False  # no limit sent on this connection yet
        return (self._verify_at is not None and now >= self._verify_at) or self._stale(now)

    async def upkeep(self) -> None:
        """Verify the lease when due and ask for stale values; run by the station's own
        task (`StationCare.attend`) while it is connected, so a slow check never holds
        up the control loop nor is cut short by it."""
        lease = self._lease
        if lease is None or lease.session is not self.station.session:
            return  # no limit sent on this connection yet
        now = trio.current_time()
        if self._verify_at is not None and now >= self._verify_at:
            await self._verify(lease, now)
        await self._ask_if_stale(now)

    async def _verify(self, lease: ProfileLease, now: float) -> None:
        verification = await lease.verify()
        self._verify_at = now + self.settings.verify_every_s
        if verification.late:  # the lease had lapsed first: check the next one soon
            self._verify_at = now + self.settings.verify_after_s
        if verification.following is not None:
            self._distrusted = 0 if verification.following else self._distrusted + 1
        before = self._verification
        if verification.following is None and before is not None and before.following is not None:
            verification = replace(before, lapses=verification.lapses)  # its verdict stands
        self._verification = verification
        if verification.following is False:
            LOG.warning(
                "%s#%d: not following: %s", self.id, self.connector_id, verification.evidence
            )
        if verification.lapses is not None and lease.mode is LeaseMode.LEVELS:
            # a levels lease lapses by its validTo (a schedule lease by its own periods)
            await self.care.saw_lapse(verification.lapses)
            if not verification.lapses:  # the lease changes shape: check the new one soon
                self._verify_at = now + self.settings.verify_after_s
                lease.capabilities = self.care.capabilities
        if self._distrusted:  # the same answer is likely: back off
            self._verify_at = now + self.settings.recheck_after_s(self._distrusted)

    def _stale(self, now: float) -> bool:
        """A charging connector with old values, not asked for new ones this interval."""
        connector = self.station.connector(self.connector_id)
        if connector.transaction is None and iec_state(connector) not in (IecState.C, IecState.D):
            return False
        measured_at = connector.measured_at
        if measured_at is not None and now - measured_at <= self.stale_after_s:
            return False
        return now - self._triggered_at >= self._sample_interval_s

    async def _ask_if_stale(self, now: float) -> None:
        """TriggerMessage(MeterValues) for a charging connector with old values."""
        if not self._stale(now):
            return
        self._triggered_at = now
        try:
            await ChargerOperations(self._session()).trigger("MeterValues", self.connector_id)
        except CALL_FAILED as error:
            LOG.debug("%s#%d: MeterValues not triggered: %s", self.id, self.connector_id, error)


def _currents(connector: ConnectorState, voltage_v: float, phases: int) -> PhaseCurrents:
    """Per-phase current: measured, else derived from power or the energy register."""
    m = connector.measurement
    if any(c is not None for c in m.current_a):
        return m.current_a
    power = m.power_w if m.power_w is not None else m.energy_power_w
    if power is None or voltage_v <= 0:
        return m.current_a
    return currents_from_power(power, voltage_v, phases)


def _dc_currents(connector: ConnectorState, dc: DcConnector, voltage_v: float) -> PhaseCurrents:
    """A DC connector's AC current per phase from its power (its Current.Import is DC)."""
    m = connector.measurement
    power = m.power_w if m.power_w is not None else m.energy_power_w
    if power is None:
        return (None, None, None)
    amperes = dc.ac_current_a(max(power, 0.0), voltage_v)
    return (amperes, amperes, amperes)


def _same(known: tuple[object, ...], now: tuple[object, ...]) -> bool:
    """Whether two tuples of the same length hold the same objects (`is`, not `==`)."""
    return all(map(operator.is_, known, now))


def _phases(phases: int) -> Literal[1, 3]:
    if phases not in (1, 3):
        raise ValueError(f"OCPP limits are for 1 or 3 phases, got {phases}")
    return 1 if phases == 1 else 3
