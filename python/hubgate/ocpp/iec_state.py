"""The IEC 61851 state (A-F) an OCPP connector's status stands for."""

from __future__ import annotations

from hubgate.ocpp.registry import ConnectorState
from hubgate.profiles.model import IecState

_IEC_BY_STATUS = {
    "Available": IecState.A,
    "Reserved": IecState.A,
    "Preparing": IecState.B,
    "SuspendedEV": IecState.B,
    "SuspendedEVSE": IecState.B,
    "Finishing": IecState.B,
    "Occupied": IecState.B,  # 2.x; charging per its charging state or current (below)
    "Charging": IecState.C,
    "Unavailable": IecState.F,
    "Faulted": IecState.F,
}
CHARGING_CURRENT_A = 1.0
"""A 2.x connector that is Occupied and draws more than this on a phase is charging."""


def iec_state(connector: ConnectorState) -> IecState | None:
    """The IEC 61851 state an OCPP connector status stands for (None when unknown)."""
    state = _IEC_BY_STATUS.get(connector.status)
    if state is IecState.B and connector.status == "Occupied":
        if connector.charging_state == "Charging":
            return IecState.C
        if connector.charging_state is not None:
            return IecState.B
        currents = [c for c in connector.measurement.current_a if c is not None]
        if currents:
            return IecState.C if max(currents) > CHARGING_CURRENT_A else IecState.B
    return state
