"""hubgate as its chargers' OCPP Local Controller towards the operator's CSMS.

Per connected charger, an `UpstreamLink` to the CSMS under the charger's own
identity and OCPP version (2.0.1 Part 4 §6). Routing:

- Charger → CSMS: every call goes up with the charger's message id, action
  and payload unchanged, and the CSMS's answer comes back. hubgate's station
  state (`StationRegistry`) is updated from it as when hubgate is the CSMS.
- CSMS → charger: calls go down with the CSMS's message id and the answer
  goes back up. Intercepted: SetChargingProfile and ClearChargingProfile
  become CSMS limit leases for the allocator (`csms_limits`); SendLocalList,
  GetLocalListVersion and ClearCache act on hubgate's local authorization
  list and cache; a 1.6 RemoteStopTransaction has its transaction id mapped
  back to the local one the charger knows.
- hubgate's own calls to the charger (smart charging, verification) use the
  charger's session directly and never reach the CSMS.

Offline (no CSMS connection, or while the charger's queue is not empty):
messages follow `offline.offline_handling`. QUEUE and LATEST messages are
stored durably (`DurableQueue.enqueue` returns after the fsync) *before* the
charger is answered locally; a 1.6 StartTransaction gets a negative local
transaction id. LOCAL messages are answered by hubgate: Authorize from the
local list and cache, Heartbeat with the clock. On (re)connection the queue is
replayed in order with the original message ids; while it is not empty, the
charger's new stored-kind messages are queued behind it, so the CSMS sees
them in order. A charger keeps using a local transaction id after the CSMS
returns; hubgate maps it to the CSMS's id in both directions.

Unlike §6's connection-loss rule, hubgate keeps the chargers connected when
the CSMS is gone: it is the store-and-forward layer, not the charger.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import trio

from hubgate.backoff import Backoff
from hubgate.cloud.authlist import auth_record, authorize_answer, local_list_update, token_key
from hubgate.cloud.credentials import CsmsAuth
from hubgate.cloud.csms_limits import CsmsLimits, profile_of
from hubgate.cloud.errors import CsmsCallError
from hubgate.cloud.offline import OfflineHandling, OfflineRule, offline_handling
from hubgate.cloud.queue import DurableQueue, open_durable_queue
from hubgate.cloud.store import Outgoing, QueuedMessage, Store
from hubgate.cloud.upstream import OnConnect, UpstreamLink
from hubgate.config.model import Csms
from hubgate.control.limits import SITE, LimitBook, connector_target
from hubgate.ocpp.errors import (
    ErrorCode,
    OcppCallError,
    OcppCallTimeoutError,
    OcppSessionClosedError,
    RpcError,
)
from hubgate.ocpp.policy import CsmsPolicy
from hubgate.ocpp.registry import Station
from hubgate.ocpp.rpc import Payload
from hubgate.ocpp.server import csms_handlers
from hubgate.ocpp.session import INCOMING_ID, Handler, OcppSession, SessionLimits
from hubgate.ocpp.validation import actions
from hubgate.ocpp.versions import OcppVersion

LOG = logging.getLogger("hubgate.cloud")

V16 = OcppVersion.V16
_LOST = (OcppSessionClosedError, OcppCallTimeoutError)
"""Upstream failures after which a message's fate is unknown: it is stored (again)."""


@dataclass(frozen=True)
class ProxySettings:
    """Timing of the upstream connections."""

    backoff: Backoff = field(default_factory=lambda: Backoff(initial_s=1.0, maximum_s=60.0))
    upstream: SessionLimits = field(default_factory=SessionLimits)
    connect_timeout_s: float = 10.0
    first_connect_wait_s: float = 5.0
    """A charger's first call waits this long for its upstream connection to come up."""
    replay_retry_s: float = 5.0
    """Wait before replaying again after the CSMS rejected a message or did not answer."""
    gateway_version: OcppVersion = OcppVersion.V201
    """The version of the gateway's own connection (`Csms.identity`)."""


def _error_code(code: str) -> ErrorCode:
    try:
        return ErrorCode(code)
    except ValueError:
        return ErrorCode.GENERIC_ERROR


def _relayed(error: OcppCallError) -> RpcError:
    """The peer's CallError, passed on to the other side."""
    return RpcError(_error_code(error.code), error.description)


def _profile_status(limits: CsmsLimits, target: str, profile: Payload, origin: str) -> Payload:
    """Follow a CSMS profile on `target`: Accepted, or Rejected when it sets no valid limit."""
    try:
        limits.set_profile(target, profile, origin)
    except ValueError as exc:
        LOG.warning("%s", exc)
        return {"status": "Rejected"}
    return {"status": "Accepted"}


class CsmsProxy:
    """Routes the chargers' connections to the CSMS; make one with `open_csms_proxy`."""

    def __init__(
        self,
        csms: Csms,
        queue: DurableQueue,
        limits: CsmsLimits,
        *,
        policy: CsmsPolicy | None = None,
        settings: ProxySettings | None = None,
    ) -> None:
        self.csms = csms
        self.queue = queue
        self.limits = limits
        self.policy = policy or CsmsPolicy()
        self.settings = settings or ProxySettings()
        self.chargers: dict[str, ChargerProxy] = {}
        """The proxy of each connected charger, by identity."""
        self.gateway: UpstreamLink | None = None
        self.auth = CsmsAuth(csms)

    def attach(self, station: Station, version: OcppVersion) -> ChargerProxy:
        """The listener's `Attach`: the proxy of one new charger connection."""
        return ChargerProxy(self, station, version)

    def link(
        self,
        identity: str,
        version: OcppVersion,
        handlers: Mapping[str, Handler],
        on_connect: OnConnect | None = None,
    ) -> UpstreamLink:
        """An upstream connection with the proxy's settings."""
        return UpstreamLink(
            self.csms.url,
            identity,
            version,
            handlers,
            backoff=self.settings.backoff,
            limits=self.settings.upstream,
            connect_timeout_s=self.settings.connect_timeout_s,
            auth=self.auth,
            on_connect=on_connect,
        )

    async def run_gateway(self, identity: str) -> None:
        """The gateway's own connection: its charging profiles set the site limit."""

        async def set_profile(p: Payload) -> Payload:
            profile = profile_of(self.settings.gateway_version, p)[1]
            return _profile_status(self.limits, SITE, profile, "csms")

        async def clear_profile(p: Payload) -> Payload:
            return {"status": "Accepted" if self.limits.clear(SITE, "csms") else "Unknown"}

        async def boot(session: OcppSession) -> None:
            station = {"model": "hubgate", "vendorName": "hubgate"}
            try:
                await session.call(
                    "BootNotification", {"reason": "PowerUp", "chargingStation": station}
                )
            except (OcppCallError, *_LOST) as exc:
                LOG.warning("gateway BootNotification failed: %s", exc)

        handlers = {"SetChargingProfile": set_profile, "ClearChargingProfile": clear_profile}
        self.gateway = self.link(identity, self.settings.gateway_version, handlers, boot)
        await self.gateway.run()


class ChargerProxy:
    """One charger connection's routing (see the module docstring); an `Attachment`."""

    def __init__(self, proxy: CsmsProxy, station: Station, version: OcppVersion) -> None:
        self.proxy = proxy
        self.station = station
        self.version = version
        self.identity = station.identity
        self._queue = proxy.queue
        self._local = csms_handlers(station, version, proxy.policy)
        self._charger: OcppSession | None = None
        self._order = trio.Lock()
        self._backlog = False
        self._kick = trio.Event()
        everything = actions(version)
        self.handlers: dict[str, Handler] = {
            a: functools.partial(self._from_charger, a) for a in everything
        }
        downward: dict[str, Handler] = {
            a: functools.partial(self._to_charger, a) for a in everything
        }
        downward |= {
            "SetChargingProfile": self._set_charging_profile,
            "ClearChargingProfile": self._clear_charging_profile,
            "SendLocalList": self._send_local_list,
            "GetLocalListVersion": self._get_local_list_version,
            "ClearCache": self._clear_cache,
        }
        self.upstream = proxy.link(self.identity, version, downward, self._replay_while_connected)

    @property
    def backlog(self) -> bool:
        """Whether stored messages wait for the CSMS."""
        return self._backlog

    async def run(self, session: OcppSession) -> None:
        """While the charger is connected: its upstream connection and replay."""
        self._charger = session
        self.proxy.chargers[self.identity] = self
        try:
            pending = await self._queue.run(
                functools.partial(Store.pending_count, charge_point=self.identity)
            )
            self._backlog = self._backlog or pending > 0
            await self.upstream.run()
        finally:
            if self.proxy.chargers.get(self.identity) is self:
                del self.proxy.chargers[self.identity]

    # -- charger → CSMS -------------------------------------------------------

    async def _from_charger(self, action: str, payload: Payload) -> Payload:
        unique_id = INCOMING_ID.get()
        with trio.move_on_after(self.proxy.settings.first_connect_wait_s):
            await self.upstream.attempted.wait()
        handling = offline_handling(action, payload)
        if handling.rule is OfflineRule.LOCAL:
            if self.upstream.online:
                try:
                    return await self._forward(unique_id, action, payload)
                except _LOST:
                    pass
            return await self._answer_locally(action, payload)
        async with self._order:
            if not self._backlog and self.upstream.online:
                try:
                    return await self._forward(unique_id, action, payload)
                except _LOST as exc:
                    LOG.info(
                        "%s: %s not confirmed by the CSMS (%s); stored", self.identity, action, exc
                    )
            return await self._store(unique_id, action, payload, handling)

    async def _forward(self, unique_id: str, action: str, payload: Payload) -> Payload:
        session = self.upstream.session
        if session is None:
            raise OcppSessionClosedError(f"{self.identity}: no CSMS connection")
        try:
            answer = await session.call(
                action, await self._csms_transaction_ids(payload), unique_id=unique_id
            )
        except OcppCallError as exc:
            raise _relayed(exc) from None
        local = self._local.get(action)
        if local is not None:
            reply = await local(payload)  # hubgate's own view of the station
            if self.version is V16 and action == "StartTransaction":
                self._rekey(reply["transactionId"], answer["transactionId"])
        if action == "Authorize":
            await self._cache(payload, answer)
        return answer

    async def _store(
        self, unique_id: str, action: str, payload: Payload, handling: OfflineHandling
    ) -> Payload:
        start16 = self.version is V16 and action == "StartTransaction"
        receipt = await self._queue.enqueue(
            Outgoing(
                self.identity,
                unique_id,
                action,
                payload,
                coalesce_key=handling.coalesce_key,
                issue_transaction_id=start16,
            )
        )
        self._backlog = True
        self._kick.set()
        answer = await self._answer_locally(action, payload)
        if start16:
            self._rekey(answer["transactionId"], receipt.local_transaction_id)
            answer["transactionId"] = receipt.local_transaction_id
        return answer

    async def _answer_locally(self, action: str, payload: Payload) -> Payload:
        if action == "Authorize":
            token = payload["idTag" if self.version is V16 else "idToken"]
            found = await self._queue.run(
                functools.partial(
                    Store.authorize,
                    charge_point=self.identity,
                    key=token_key(self.version, token),
                    now=time.time(),
                )
            )
            return authorize_answer(self.version, found)
        local = self._local.get(action)
        if local is not None:
            return await local(payload)
        return {}  # the remaining notifications' responses have no required fields

    async def _csms_transaction_ids(self, payload: Payload) -> Payload:
        """A 1.6 local (negative) transaction id the charger still uses → the CSMS's id."""
        local_id = payload.get("transactionId")
        if self.version is not V16 or not isinstance(local_id, int) or local_id >= 0:
            return payload
        csms_id = await self._queue.run(
            functools.partial(
                Store.csms_transaction_id, charge_point=self.identity, local_id=local_id
            )
        )
        return payload if csms_id is None else {**payload, "transactionId": csms_id}

    def _rekey(self, old: object, new: object) -> None:
        """hubgate's registry keeps a 1.6 transaction under the id the charger was given."""
        transaction = self.station.transactions.pop(str(old), None)
        if transaction is not None:
            transaction.transaction_id = str(new)
            self.station.transactions[str(new)] = transaction

    async def _cache(self, request: Payload, answer: Payload) -> None:
        v16 = self.version is V16
        info = answer.get("idTagInfo" if v16 else "idTokenInfo")
        if not isinstance(info, dict):
            return
        key = token_key(self.version, request["idTag" if v16 else "idToken"])
        record = auth_record(self.version, key, info)
        await self._queue.run(
            functools.partial(
                Store.cache_authorization,
                charge_point=self.identity,
                record=record,
                now=time.time(),
            )
        )

    # -- replay ----------------------------------------------------------------

    async def _replay_while_connected(self, session: OcppSession) -> None:
        """Replay the queue whenever it is not empty, for as long as `session` is up."""

        async def send(message: QueuedMessage) -> dict[str, Any]:
            try:
                return await session.call(
                    message.action, message.payload, unique_id=message.message_id
                )
            except OcppCallError as exc:
                raise CsmsCallError(exc.code, exc.description) from None

        while True:
            if not self._backlog:
                self._kick = trio.Event()
                await self._kick.wait()
                continue
            try:
                delivered = await self._queue.replay(self.identity, send)
            except OcppSessionClosedError:
                return
            except (CsmsCallError, OcppCallTimeoutError) as exc:
                LOG.warning("%s: replay paused: %s", self.identity, exc)
                await trio.sleep(self.proxy.settings.replay_retry_s)
                continue
            LOG.info("%s: replayed %d messages", self.identity, delivered)
            async with self._order:
                left = await self._queue.run(
                    functools.partial(Store.pending_count, charge_point=self.identity)
                )
                self._backlog = left > 0

    # -- CSMS → charger ----------------------------------------------------------

    async def _to_charger(self, action: str, payload: Payload) -> Payload:
        charger = self._charger
        if charger is None or charger.closed:
            raise RpcError(ErrorCode.GENERIC_ERROR, "the charge point is not connected")
        if self.version is V16 and action == "RemoteStopTransaction":
            payload = await self._local_transaction_id(payload)
        try:
            return await charger.call(action, payload, unique_id=INCOMING_ID.get())
        except OcppCallError as exc:
            raise _relayed(exc) from None
        except OcppCallTimeoutError:
            raise RpcError(ErrorCode.GENERIC_ERROR, "the charge point did not answer") from None
        except OcppSessionClosedError:
            raise RpcError(ErrorCode.GENERIC_ERROR, "the charge point disconnected") from None

    async def _local_transaction_id(self, payload: Payload) -> Payload:
        local_id = await self._queue.run(
            functools.partial(
                Store.local_transaction_id,
                charge_point=self.identity,
                csms_id=payload["transactionId"],
            )
        )
        return payload if local_id is None else {**payload, "transactionId": local_id}

    def _target(self, connector: int) -> str:
        return connector_target(self.station.admission.charger_id, connector)

    async def _set_charging_profile(self, payload: Payload) -> Payload:
        connector, profile = profile_of(self.version, payload)
        origin = f"csms:{self.identity}"
        return _profile_status(self.proxy.limits, self._target(connector), profile, origin)

    async def _clear_charging_profile(self, payload: Payload) -> Payload:
        if self.version is V16:
            connector = payload.get("connectorId")
        else:
            connector = (payload.get("chargingProfileCriteria") or {}).get("evseId")
        prefix = self._target(0)[:-1]
        targets = [
            t
            for t in self.proxy.limits.targets()
            if t.startswith(prefix) and (connector is None or t == self._target(connector))
        ]
        cleared = [self.proxy.limits.clear(t, f"csms:{self.identity}") for t in targets]
        return {"status": "Accepted" if any(cleared) else "Unknown"}

    async def _send_local_list(self, payload: Payload) -> Payload:
        update = local_list_update(self.version, payload)
        status = await self._queue.run(
            functools.partial(
                Store.update_local_list,
                charge_point=self.identity,
                version=update.version,
                full=update.full,
                updates=update.updates,
            )
        )
        return {"status": str(status)}

    async def _get_local_list_version(self, payload: Payload) -> Payload:
        version = await self._queue.run(
            functools.partial(Store.local_list_version, charge_point=self.identity)
        )
        return {"listVersion" if self.version is V16 else "versionNumber": version}

    async def _clear_cache(self, payload: Payload) -> Payload:
        await self._queue.run(functools.partial(Store.clear_cache, charge_point=self.identity))
        return {"status": "Accepted"}


@asynccontextmanager
async def open_csms_proxy(
    csms: Csms,
    book: LimitBook,
    *,
    policy: CsmsPolicy | None = None,
    settings: ProxySettings | None = None,
) -> AsyncIterator[CsmsProxy]:
    """The proxy with its durable queue (`csms.queue_path`) and, with `csms.identity`,
    the gateway's own connection; pass `proxy.attach` to `OcppListener`."""
    async with open_durable_queue(csms.queue_path) as queue, trio.open_nursery() as nursery:
        limits = CsmsLimits(book)
        await nursery.start(limits.run)
        proxy = CsmsProxy(csms, queue, limits, policy=policy, settings=settings)
        if csms.identity is not None:
            nursery.start_soon(proxy.run_gateway, csms.identity)
        yield proxy
        nursery.cancel_scope.cancel()
