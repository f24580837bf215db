"""What the CSMS asks of one charger through hubgate, its Local Controller.

Calls go down to the charger with the CSMS's message id and the answer goes back up.
Intercepted: SetChargingProfile and ClearChargingProfile become CSMS limit leases for the
allocator (`csms_limits`), and so does the charging profile a RemoteStartTransaction /
RequestStartTransaction carries (the start itself goes on without it, and a TxProfile
ends with its transaction): no CSMS profile reaches a charger, so none can raise it above
hubgate's setpoint. SendLocalList, GetLocalListVersion and ClearCache act on hubgate's
local authorization list and cache; a 1.6 RemoteStopTransaction has its transaction id
mapped back to the local one the charger knows.
"""

from __future__ import annotations

import functools
import logging

from hubgate.cloud.authlist import local_list_update
from hubgate.cloud.csms_limits import TX_PROFILE, CsmsLimits, profile_of
from hubgate.cloud.queue import DurableQueue
from hubgate.cloud.store import Store
from hubgate.cloud.store_changes import cache_cleared, local_list
from hubgate.control.limits import connector_target
from hubgate.ocpp.errors import (
    ErrorCode,
    OcppCallError,
    OcppCallTimeoutError,
    OcppSessionClosedError,
    RpcError,
)
from hubgate.ocpp.registry import Station
from hubgate.ocpp.rpc import Payload
from hubgate.ocpp.session import INCOMING_ID, Handler, OcppSession
from hubgate.ocpp.validation import actions
from hubgate.ocpp.versions import OcppVersion

LOG = logging.getLogger("hubgate.cloud")

V16 = OcppVersion.V16


def _error_code(code: str) -> ErrorCode:
    try:
        return ErrorCode(code)
    except ValueError:
        return ErrorCode.GENERIC_ERROR


def relayed(error: OcppCallError) -> RpcError:
    """The peer's CallError, passed on to the other side."""
    return RpcError(_error_code(error.code), error.description)


def profile_status(limits: CsmsLimits, target: str, profile: Payload, origin: str) -> Payload:
    """Follow a CSMS profile on `target`: Accepted, or Rejected when it sets no valid limit."""
    try:
        limits.set_profile(target, profile, origin)
    except ValueError as exc:
        LOG.warning("%s", exc)
        return {"status": "Rejected"}
    return {"status": "Accepted"}


class CsmsRequests:
    """The CSMS's calls to one charger connection (see the module docstring)."""

    def __init__(
        self,
        station: Station,
        version: OcppVersion,
        queue: DurableQueue,
        limits: CsmsLimits,
    ) -> None:
        self.station = station
        self.version = version
        self.identity = station.identity
        self.queue = queue
        self.limits = limits
        self.charger: OcppSession | None = None
        """The charger's session, once it runs."""
        self._awaiting_start: dict[str, Payload] = {}
        """CSMS TxProfiles of remote starts without a connector, by id token, until the
        charger reports the start."""

    def handlers(self) -> dict[str, Handler]:
        """Every action of the version: passed to the charger, or intercepted."""
        downward: dict[str, Handler] = {
            a: functools.partial(self.to_charger, a) for a in actions(self.version)
        }
        return downward | {
            "SetChargingProfile": self._set_charging_profile,
            "ClearChargingProfile": self._clear_charging_profile,
            "SendLocalList": self._send_local_list,
            "GetLocalListVersion": self._get_local_list_version,
            "ClearCache": self._clear_cache,
        }

    async def to_charger(self, action: str, payload: Payload) -> Payload:
        charger = self.charger
        if charger is None or charger.closed:
            raise RpcError(ErrorCode.GENERIC_ERROR, "the charge point is not connected")
        if self.version is V16 and action == "RemoteStopTransaction":
            payload = await self._local_transaction_id(payload)
        if action in ("RemoteStartTransaction", "RequestStartTransaction"):
            payload = self._take_charging_profile(payload)
        try:
            return await charger.call(action, payload, unique_id=INCOMING_ID.get())
        except OcppCallError as exc:
            raise relayed(exc) from None
        except OcppCallTimeoutError:
            raise RpcError(ErrorCode.GENERIC_ERROR, "the charge point did not answer") from None
        except OcppSessionClosedError:
            raise RpcError(ErrorCode.GENERIC_ERROR, "the charge point disconnected") from None

    async def _local_transaction_id(self, payload: Payload) -> Payload:
        local_id = await self.queue.run(
            functools.partial(
                Store.local_transaction_id,
                charge_point=self.identity,
                csms_id=payload["transactionId"],
            )
        )
        return payload if local_id is None else {**payload, "transactionId": local_id}

    def _target(self, connector: int) -> str:
        return connector_target(self.station.admission.charger_id, connector)

    def _take_charging_profile(self, payload: Payload) -> Payload:
        """A remote start's charging profile becomes a CSMS lease on its connector (once
        the charger names the connector, when the CSMS did not); the start goes on
        without it."""
        profile = payload.get("chargingProfile")
        if profile is None:
            return payload
        connector = payload.get("connectorId" if self.version is V16 else "evseId")
        if connector is None:
            self._awaiting_start[self._token_name(payload)] = profile
        else:
            self._set_tx_profile(int(connector), profile)
        return {k: v for k, v in payload.items() if k != "chargingProfile"}

    def _token_name(self, payload: Payload) -> str:
        token = payload.get("idTag" if self.version is V16 else "idToken")
        return token if isinstance(token, str) else str((token or {}).get("idToken"))

    def _set_tx_profile(self, connector: int, profile: Payload) -> None:
        origin = f"csms:{self.identity}"
        profile_status(self.limits, self._target(connector), profile, origin)

    def follow_transaction(self, action: str, payload: Payload) -> None:
        """A transaction began or ended on a connector: a CSMS TxProfile waiting for it
        applies there now, one that ends with it is cleared."""
        v16 = self.version is V16
        connector: int | None
        if action in ("StartTransaction", "TransactionEvent"):
            evse = payload.get("evse")
            connector = payload.get("connectorId") if v16 else (evse or {}).get("id")
            waiting = self._awaiting_start.pop(self._token_name(payload), None)
            if waiting is not None and connector is not None:
                self._set_tx_profile(int(connector), waiting)
        ended = action == "StopTransaction" or payload.get("eventType") == "Ended"
        status = payload.get("status" if v16 else "connectorStatus")
        if not ended and status != "Available":
            return
        evse = payload.get("evse")
        if evse is not None:
            connector = evse.get("id")
        elif action == "StatusNotification":
            connector = payload.get("connectorId") if v16 else payload.get("evseId")
        else:  # StopTransaction; an Ended TransactionEvent names its EVSE only if it changed
            info = payload if v16 else payload.get("transactionInfo") or {}
            transaction = self.station.transactions.get(str(info.get("transactionId")))
            connector = None if transaction is None else transaction.connector_id
        if connector is not None:
            self.limits.clear(
                self._target(int(connector)), f"csms:{self.identity}", purpose=TX_PROFILE
            )

    async def _set_charging_profile(self, payload: Payload) -> Payload:
        connector, profile = profile_of(self.version, payload)
        origin = f"csms:{self.identity}"
        return profile_status(self.limits, self._target(connector), profile, origin)

    async def _clear_charging_profile(self, payload: Payload) -> Payload:
        if self.version is V16:
            connector = payload.get("connectorId")
            criteria = payload
            profile_id = payload.get("id")
        else:
            criteria = payload.get("chargingProfileCriteria") or {}
            connector = criteria.get("evseId")
            profile_id = payload.get("chargingProfileId")
        prefix = self._target(0)[:-1]
        targets = [
            t
            for t in self.limits.targets()
            if t.startswith(prefix) and (connector is None or t == self._target(connector))
        ]
        cleared = [
            self.limits.clear(
                t,
                f"csms:{self.identity}",
                purpose=criteria.get("chargingProfilePurpose"),
                stack_level=criteria.get("stackLevel"),
                profile_id=profile_id,
            )
            for t in targets
        ]
        return {"status": "Accepted" if any(cleared) else "Unknown"}

    async def _send_local_list(self, payload: Payload) -> Payload:
        update = local_list_update(self.version, payload)
        status = await self.queue.change(local_list(self.identity, update))
        return {"status": str(status)}

    async def _get_local_list_version(self, payload: Payload) -> Payload:
        version = await self.queue.run(
            functools.partial(Store.local_list_version, charge_point=self.identity)
        )
        return {"listVersion" if self.version is V16 else "versionNumber": version}

    async def _clear_cache(self, payload: Payload) -> Payload:
        await self.queue.change(cache_cleared(self.identity))
        return {"status": "Accepted"}
