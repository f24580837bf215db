"""An OCPP charge point as the control loop's `Charger` (hubgate.devices.model).

Readings come from what the station last reported (MeterValues, status);
limits go out as leased charging profiles, so the control loop drives OCPP
and Modbus chargers alike: `configure_failsafe` sets the lease and the
failsafe current, `heartbeat` renews the lease before it runs out.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

import trio

from hubgate.devices.model import AppliedLimit, IecState, Reading
from hubgate.ocpp.errors import OcppSessionClosedError
from hubgate.ocpp.operations import ChargerOperations
from hubgate.ocpp.registry import ConnectorState, Station
from hubgate.ocpp.smart_charging import (
    ChargerCapabilities,
    LeaseSettings,
    ProfileLease,
    Setpoint,
    lease_for_session,
)
from hubgate.profiles.model import Quantity

_IEC_BY_STATUS = {
    "Available": IecState.A,
    "Reserved": IecState.A,
    "Preparing": IecState.B,
    "SuspendedEV": IecState.B,
    "SuspendedEVSE": IecState.B,
    "Finishing": IecState.B,
    "Occupied": IecState.B,  # 2.x; charging when current flows (below)
    "Charging": IecState.C,
    "Unavailable": IecState.F,
    "Faulted": IecState.F,
}
CHARGING_CURRENT_A = 1.0
"""A 2.x connector that is Occupied and draws more than this on a phase is charging."""


def iec_state(connector: ConnectorState) -> IecState | None:
    """The IEC 61851 state an OCPP connector status stands for (None when unknown)."""
    state = _IEC_BY_STATUS.get(connector.status)
    currents = [c for c in connector.measurement.current_a if c is not None]
    if state is IecState.B and connector.status == "Occupied" and currents:
        return IecState.C if max(currents) > CHARGING_CURRENT_A else IecState.B
    return state


class OcppCharger:
    """One connector of an OCPP station, driven like any other charger.

    The limit applies to the whole station (connector 0, the station-maximum
    purpose) when `whole_station` is set, which suits single-connector chargers;
    otherwise to `connector_id` alone (TxDefault on that connector).
    """

    def __init__(
        self,
        station: Station,
        *,
        connector_id: int = 1,
        whole_station: bool = True,
        settings: LeaseSettings | None = None,
        capabilities: ChargerCapabilities | None = None,
    ) -> None:
        self.station = station
        self.connector_id = connector_id
        self.settings = settings or LeaseSettings()
        self.capabilities = capabilities
        self._lease_connector = 0 if whole_station else connector_id
        self._lease: ProfileLease | None = None

    @property
    def id(self) -> str:
        """The charger id from the site file."""
        return self.station.admission.charger_id

    @property
    def heartbeat_period_s(self) -> float | None:
        """Half the renewal margin, so the lease is renewed before it runs out."""
        return self.settings.renew_before_s / 2

    def _current_lease(self) -> ProfileLease:
        lease = lease_for_session(
            self._lease,
            self.station.session,
            connector_id=self._lease_connector,
            settings=self.settings,
            capabilities=self.capabilities,
        )
        if lease is None:
            raise OcppSessionClosedError(f"{self.station.identity}: not connected")
        self._lease = lease
        return lease

    async def read(self) -> Reading:
        """The connector's latest reported values; raises when the station is offline."""
        return self.latest()

    def latest(self) -> Reading:
        """The connector's latest reported values, at once; raises when the station is offline."""
        if self.station.session is None:
            raise OcppSessionClosedError(f"{self.station.identity}: not connected")
        connector = self.station.connector(self.connector_id)
        m = connector.measurement
        candidates: dict[Quantity, float | None] = {
            Quantity.CURRENT_L1: m.current_a[0],
            Quantity.CURRENT_L2: m.current_a[1],
            Quantity.CURRENT_L3: m.current_a[2],
            Quantity.VOLTAGE_L1: m.voltage_v[0],
            Quantity.VOLTAGE_L2: m.voltage_v[1],
            Quantity.VOLTAGE_L3: m.voltage_v[2],
            Quantity.POWER_TOTAL: m.power_w,
            Quantity.ENERGY_IMPORT: m.energy_wh,
            Quantity.SOC: m.soc_percent,
        }
        values = {q: v for q, v in candidates.items() if v is not None}
        last = self._lease.planner.last if self._lease is not None else None
        if last is not None:
            values[Quantity.APPLIED_CURRENT_LIMIT] = last.current_a
        at = connector.measured_at if connector.measured_at is not None else trio.current_time()
        return Reading(at=at, values=values, state=iec_state(connector))

    async def set_limit(self, current_a: float, phases: int) -> AppliedLimit:
        """Send the limit when due (deadband, rate limit); returns the limit in force."""
        lease = self._current_lease()
        await lease.apply(Setpoint(current_a, _phases(phases)))
        applied = lease.planner.last
        assert applied is not None, "apply either sent the setpoint or raised"
        return AppliedLimit(
            current_a=applied.current_a,
            phases=applied.phases,
            paused=applied.current_a <= 0,
            at=trio.current_time(),
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
        """Lease `timeout_s` and failsafe current; the base profile is installed at once."""
        self.settings = replace(
            self.settings,
            lease_s=timeout_s,
            renew_before_s=timeout_s / 3,
            failsafe_current_a=failsafe_current_a,
        )
        self._lease = None
        await self._current_lease().install_base()

    async def heartbeat(self) -> None:
        """Renew the lease when it is due (nothing before the first limit)."""
        lease = self._current_lease()
        if lease.planner.last is not None:
            await lease.apply(lease.planner.last)


def _phases(phases: int) -> Literal[1, 3]:
    if phases not in (1, 3):
        raise ValueError(f"OCPP limits are for 1 or 3 phases, got {phases}")
    return 1 if phases == 1 else 3
