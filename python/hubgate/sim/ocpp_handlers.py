"""The CSMS's requests to a simulated charge point, on the `ocpp` package's ChargePoint.

`Handlers16` and `Handlers201` are the package's asyncio ChargePoints for OCPP 1.6 and
2.0.1 with a handler per request the simulator answers; each handler only translates
the message and delegates to its station through `Requests`, so the station's
behaviour is written once for both versions (`hubgate.sim.ocpp_station`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol, TypeVar, cast

from ocpp.exceptions import OCPPError  # type: ignore[import-untyped]
from ocpp.messages import Call, unpack  # type: ignore[import-untyped]
from ocpp.routing import after as _after  # type: ignore[import-untyped]
from ocpp.routing import on as _on
from ocpp.v16 import ChargePoint as ChargePoint16  # type: ignore[import-untyped]
from ocpp.v16 import call_result as result16
from ocpp.v201 import ChargePoint as ChargePoint201  # type: ignore[import-untyped]
from ocpp.v201 import call_result as result201

Handler = TypeVar("Handler", bound=Callable[..., Any])

RESPONSE_TIMEOUT_S = 30.0
"""How long a station waits for the CSMS's answer to its call before it hangs up and dials
again (the `ocpp` package's default). At 10 s, the charger zoo's stations under `hubgate run`
on a machine at load ~20 redialled again and again (and booted again) mid-run."""


def on(action: str) -> Callable[[Handler], Handler]:
    """The `ocpp` package's handler decorator, typed."""
    return cast("Callable[[Handler], Handler]", _on(action))


def after(action: str) -> Callable[[Handler], Handler]:
    """The `ocpp` package's decorator for what runs once the answer went out, typed."""
    return cast("Callable[[Handler], Handler]", _after(action))


def timestamp(moment: datetime) -> str:
    """An OCPP date-time text."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ProfileRequests(Protocol):
    """What the CSMS's charging-profile requests ask of a station (`StationLimits`)."""

    def clear_profiles(
        self,
        *,
        id: int | None,
        target: int | None,
        purpose: str | None,
        stack_level: int | None,
    ) -> str:
        """Clear the profiles that match every criterion given: Accepted, or Unknown when
        none did."""

    def composite(self, target: int, duration: int, unit: str | None) -> dict[str, Any] | None:
        """The limits it will apply as a composite schedule (in `unit` where it can);
        None for an unknown target."""


class Requests(Protocol):
    """What the CSMS's requests ask of a station (ids are connectors in 1.6, EVSEs in 2.0.1)."""

    @property
    def limits(self) -> ProfileRequests:
        """Its charging profiles."""

    def now(self) -> datetime:
        """The station's time."""

    def network_profile(self, slot: int, url: str) -> str:
        """SetNetworkProfile (2.0.1): Accepted or Rejected."""

    def profile_from(self, ws: Any, target: int, data: dict[str, Any]) -> str:
        """Store a charging profile for `target` (0: the station) that came over the
        connection `ws`: Accepted or Rejected."""

    def answers_calls(self) -> bool:
        """Whether it answers the CSMS's calls now (a station still starting does not)."""

    def remote_start(self, target: int | None) -> bool:
        """Start a transaction at a connector with an EV and none running."""

    def remote_stop(self, tx_id: str) -> bool:
        """Stop the transaction with this id."""

    def reset(self) -> None:
        """Reboot, once the answer went out."""

    def set_available(self, target: int, available: bool) -> bool:
        """ChangeAvailability of one connector, or all (0)."""

    def trigger(self, message: str, target: int | None) -> bool:
        """Send the message asked for, where the station knows it."""

    def configuration(self) -> dict[str, tuple[str, bool]]:
        """Configuration keys (1.6) or variables (2.0.1): value and whether read-only."""

    def configure(self, key: str, value: str) -> str:
        """Accepted, Rejected (read-only or bad value) or NotSupported (unknown key)."""

    def unreadable(self, what: str) -> None:
        """Count a frame from the CSMS the station could not take."""


class _Counting:
    """Tells its station about every frame it could not take before the `ocpp` package
    drops it (not OCPP-J) or answers it with a CallError (refused by the schema); drops the
    CSMS's calls unanswered while the station answers none (a real charger still starting:
    the CSMS's call times out)."""

    station: Requests

    async def route_message(self, raw_msg: str) -> None:
        try:
            message = unpack(raw_msg)
        except OCPPError as exc:
            self.station.unreadable(f"{exc}: {raw_msg!r}")
            return
        if isinstance(message, Call) and not self.station.answers_calls():
            return
        await super().route_message(raw_msg)  # type: ignore[misc]

    async def _handle_call(self, msg: Any) -> None:
        try:
            await super()._handle_call(msg)  # type: ignore[misc]
        except OCPPError as exc:
            self.station.unreadable(f"{exc}: {msg}")
            raise


class Handlers16(_Counting, ChargePoint16):  # type: ignore[misc]
    """The 1.6 handlers: each delegates to its station."""

    def __init__(self, identity: str, ws: Any, station: Requests) -> None:
        super().__init__(identity, ws, response_timeout=RESPONSE_TIMEOUT_S)
        self.station = station

    @on("SetChargingProfile")
    def set_charging_profile(self, connector_id: int, cs_charging_profiles: dict[str, Any]) -> Any:
        status = self.station.profile_from(self._connection, connector_id, cs_charging_profiles)
        return result16.SetChargingProfile(status=status)

    @on("ClearChargingProfile")
    def clear_charging_profile(
        self,
        id: int | None = None,
        connector_id: int | None = None,
        charging_profile_purpose: str | None = None,
        stack_level: int | None = None,
    ) -> Any:
        status = self.station.limits.clear_profiles(
            id=id, target=connector_id, purpose=charging_profile_purpose, stack_level=stack_level
        )
        return result16.ClearChargingProfile(status=status)

    @on("GetCompositeSchedule")
    def get_composite_schedule(
        self, connector_id: int, duration: int, charging_rate_unit: str | None = None
    ) -> Any:
        schedule = self.station.limits.composite(connector_id, duration, charging_rate_unit)
        if schedule is None:
            return result16.GetCompositeSchedule(status="Rejected")
        return result16.GetCompositeSchedule(
            status="Accepted",
            connector_id=connector_id,
            schedule_start=timestamp(self.station.now()),
            charging_schedule=schedule,
        )

    @on("RemoteStartTransaction")
    def remote_start(self, id_tag: str, connector_id: int | None = None, **_: Any) -> Any:
        ok = self.station.remote_start(connector_id)
        return result16.RemoteStartTransaction(status="Accepted" if ok else "Rejected")

    @on("RemoteStopTransaction")
    def remote_stop(self, transaction_id: int) -> Any:
        ok = self.station.remote_stop(str(transaction_id))
        return result16.RemoteStopTransaction(status="Accepted" if ok else "Rejected")

    @on("Reset")
    def reset(self, type: str) -> Any:
        return result16.Reset(status="Accepted")

    @after("Reset")
    def after_reset(self, type: str) -> None:
        self.station.reset()

    @on("ChangeAvailability")
    def change_availability(self, connector_id: int, type: str) -> Any:
        ok = self.station.set_available(connector_id, type == "Operative")
        return result16.ChangeAvailability(status="Accepted" if ok else "Rejected")

    @on("TriggerMessage")
    def trigger_message(self, requested_message: str, connector_id: int | None = None) -> Any:
        ok = self.station.trigger(requested_message, connector_id)
        return result16.TriggerMessage(status="Accepted" if ok else "NotImplemented")

    @on("GetConfiguration")
    def get_configuration(self, key: list[str] | None = None) -> Any:
        known = self.station.configuration()
        wanted = key or list(known)
        return result16.GetConfiguration(
            configuration_key=[
                {"key": k, "readonly": known[k][1], "value": known[k][0]}
                for k in wanted
                if k in known
            ],
            unknown_key=[k for k in wanted if k not in known] or None,
        )

    @on("ChangeConfiguration")
    def change_configuration(self, key: str, value: str) -> Any:
        return result16.ChangeConfiguration(status=self.station.configure(key, value))


class Handlers201(_Counting, ChargePoint201):  # type: ignore[misc]
    """The 2.0.1 handlers: each delegates to its station."""

    def __init__(self, identity: str, ws: Any, station: Requests) -> None:
        super().__init__(identity, ws, response_timeout=RESPONSE_TIMEOUT_S)
        self.station = station

    @on("SetChargingProfile")
    def set_charging_profile(self, evse_id: int, charging_profile: dict[str, Any], **_: Any) -> Any:
        return result201.SetChargingProfile(
            status=self.station.profile_from(self._connection, evse_id, charging_profile)
        )

    @on("ClearChargingProfile")
    def clear_charging_profile(
        self,
        charging_profile_id: int | None = None,
        charging_profile_criteria: dict[str, Any] | None = None,
        **_: Any,
    ) -> Any:
        criteria = charging_profile_criteria or {}
        status = self.station.limits.clear_profiles(
            id=charging_profile_id,
            target=criteria.get("evse_id"),
            purpose=criteria.get("charging_profile_purpose"),
            stack_level=criteria.get("stack_level"),
        )
        return result201.ClearChargingProfile(status=status)

    @on("GetCompositeSchedule")
    def get_composite_schedule(
        self, duration: int, evse_id: int, charging_rate_unit: str | None = None, **_: Any
    ) -> Any:
        schedule = self.station.limits.composite(evse_id, duration, charging_rate_unit)
        if schedule is None:
            return result201.GetCompositeSchedule(status="Rejected")
        schedule |= {
            "evse_id": evse_id,
            "schedule_start": timestamp(self.station.now()),
        }
        return result201.GetCompositeSchedule(status="Accepted", schedule=schedule)

    @on("RequestStartTransaction")
    def request_start(
        self, id_token: dict[str, Any], remote_start_id: int, evse_id: int | None = None, **_: Any
    ) -> Any:
        ok = self.station.remote_start(evse_id)
        return result201.RequestStartTransaction(status="Accepted" if ok else "Rejected")

    @on("RequestStopTransaction")
    def request_stop(self, transaction_id: str, **_: Any) -> Any:
        ok = self.station.remote_stop(transaction_id)
        return result201.RequestStopTransaction(status="Accepted" if ok else "Rejected")

    @on("Reset")
    def reset(self, type: str, **_: Any) -> Any:
        return result201.Reset(status="Accepted")

    @after("Reset")
    def after_reset(self, type: str, **_: Any) -> None:
        self.station.reset()

    @on("ChangeAvailability")
    def change_availability(
        self, operational_status: str, evse: dict[str, Any] | None = None, **_: Any
    ) -> Any:
        target = (evse or {}).get("id", 0)
        ok = self.station.set_available(target, operational_status == "Operative")
        return result201.ChangeAvailability(status="Accepted" if ok else "Rejected")

    @on("TriggerMessage")
    def trigger_message(
        self, requested_message: str, evse: dict[str, Any] | None = None, **_: Any
    ) -> Any:
        ok = self.station.trigger(requested_message, (evse or {}).get("id"))
        return result201.TriggerMessage(status="Accepted" if ok else "NotImplemented")

    @on("GetVariables")
    def get_variables(self, get_variable_data: list[dict[str, Any]], **_: Any) -> Any:
        known = self.station.configuration()
        results = []
        for item in get_variable_data:
            name = item["variable"]["name"]
            entry: dict[str, Any] = {"component": item["component"], "variable": item["variable"]}
            if name in known:
                entry |= {"attribute_status": "Accepted", "attribute_value": known[name][0]}
            else:
                entry |= {"attribute_status": "UnknownVariable"}
            results.append(entry)
        return result201.GetVariables(get_variable_result=results)

    @on("SetNetworkProfile")
    def set_network_profile(
        self, configuration_slot: int, connection_data: dict[str, Any], **_: Any
    ) -> Any:
        status = self.station.network_profile(configuration_slot, connection_data["ocpp_csms_url"])
        return result201.SetNetworkProfile(status=status)

    @on("SetVariables")
    def set_variables(self, set_variable_data: list[dict[str, Any]], **_: Any) -> Any:
        results = []
        for item in set_variable_data:
            status = self.station.configure(item["variable"]["name"], item["attribute_value"])
            results.append(
                {
                    "component": item["component"],
                    "variable": item["variable"],
                    "attribute_status": {"NotSupported": "UnknownVariable"}.get(status, status),
                }
            )
        return result201.SetVariables(set_variable_result=results)
