"""Operations towards a charger, the same for every OCPP version.

Each method builds the version's request, sends it through the session and
returns the charger's status string ("Accepted", "Rejected", ...). Settings are
named as 1.6 configuration keys, or as `Component.Variable` in 2.x.
"""

from __future__ import annotations

import itertools

from hubgate.ocpp.rpc import Payload
from hubgate.ocpp.session import OcppSession
from hubgate.ocpp.versions import OcppVersion

_REMOTE_START_IDS = itertools.count(1)


class ChargerOperations:
    """Version-neutral calls to one charger session."""

    def __init__(self, session: OcppSession, *, timeout_s: float | None = None) -> None:
        self.session = session
        self.timeout_s = timeout_s
        """Per call; None: the session's own call timeout."""
        self._v16 = session.version is OcppVersion.V16

    async def _call(self, action: str, payload: Payload) -> Payload:
        return await self.session.call(action, payload, timeout_s=self.timeout_s)

    async def _status(self, action: str, payload: Payload) -> str:
        result = await self._call(action, payload)
        status: str = result["status"]
        return status

    def _evse(self, connector_id: int | None) -> Payload:
        return {} if not connector_id else {"evse": {"id": connector_id}}

    async def remote_start(self, id_token: str, connector_id: int | None = None) -> str:
        """Start charging for `id_token` (RemoteStartTransaction / RequestStartTransaction)."""
        if self._v16:
            where = {} if connector_id is None else {"connectorId": connector_id}
            return await self._status("RemoteStartTransaction", {"idTag": id_token, **where})
        request: Payload = {
            "idToken": {"idToken": id_token, "type": "Central"},
            "remoteStartId": next(_REMOTE_START_IDS),
        }
        if connector_id is not None:
            request["evseId"] = connector_id
        return await self._status("RequestStartTransaction", request)

    async def remote_stop(self, transaction_id: str) -> str:
        """Stop a transaction (1.6 ids are integers on the wire)."""
        if self._v16:
            return await self._status(
                "RemoteStopTransaction", {"transactionId": int(transaction_id)}
            )
        return await self._status("RequestStopTransaction", {"transactionId": transaction_id})

    async def reset(self, *, hard: bool = False) -> str:
        """Reboot: hard/immediate, or soft/when idle."""
        if self._v16:
            return await self._status("Reset", {"type": "Hard" if hard else "Soft"})
        return await self._status("Reset", {"type": "Immediate" if hard else "OnIdle"})

    async def change_availability(self, connector_id: int, *, operative: bool) -> str:
        """Make a connector (0: the whole charger) operative or inoperative."""
        state = "Operative" if operative else "Inoperative"
        if self._v16:
            return await self._status(
                "ChangeAvailability", {"connectorId": connector_id, "type": state}
            )
        request = {"operationalStatus": state, **self._evse(connector_id)}
        return await self._status("ChangeAvailability", request)

    async def trigger(self, message: str, connector_id: int | None = None) -> str:
        """Ask the charger to send `message` now (e.g. StatusNotification, MeterValues)."""
        if self._v16:
            where = {} if connector_id is None else {"connectorId": connector_id}
            return await self._status("TriggerMessage", {"requestedMessage": message, **where})
        request = {"requestedMessage": message, **self._evse(connector_id)}
        return await self._status("TriggerMessage", request)

    async def get_settings(self, names: list[str]) -> dict[str, str | None]:
        """Read settings; unknown or unreadable ones map to None."""
        if self._v16:
            result = await self._call("GetConfiguration", {"key": names})
            known = {k["key"]: k.get("value") for k in result.get("configurationKey", [])}
            return {name: known.get(name) for name in names}
        result = await self._call(
            "GetVariables", {"getVariableData": [_component_variable(n) for n in names]}
        )
        values: dict[str, str | None] = dict.fromkeys(names)
        for item in result["getVariableResult"]:
            name = f"{item['component']['name']}.{item['variable']['name']}"
            if item["attributeStatus"] == "Accepted":
                values[name] = item.get("attributeValue")
        return values

    async def change_setting(self, name: str, value: str) -> str:
        """Write one setting (ChangeConfiguration / SetVariables)."""
        if self._v16:
            return await self._status("ChangeConfiguration", {"key": name, "value": value})
        data = {**_component_variable(name), "attributeValue": value}
        result = await self._call("SetVariables", {"setVariableData": [data]})
        status: str = result["setVariableResult"][0]["attributeStatus"]
        return status


def _component_variable(name: str) -> Payload:
    component, _, variable = name.partition(".")
    return {"component": {"name": component}, "variable": {"name": variable}}
