"""hubgate as its chargers' OCPP Local Controller towards the operator's CSMS.

Per connected charger, an `UpstreamLink` to the CSMS under the charger's own
identity and OCPP version (2.0.1 Part 4 §6). Routing:

- Charger → CSMS: every call goes up with the charger's message id, action
  and payload unchanged, and the CSMS's answer comes back. hubgate's station
  state (`StationRegistry`) is updated from it as when hubgate is the CSMS.
- CSMS → charger: calls go down with the CSMS's message id and the answer
  goes back up; charging profiles become CSMS limit leases, the local list
  and cache are hubgate's (`csms_requests.CsmsRequests`).
- hubgate's own calls to the charger (smart charging, verification) use the
  charger's session directly and never reach the CSMS.

Offline (no CSMS connection, or while the charger's queue is not empty):
messages follow `offline.offline_handling`. QUEUE and LATEST messages are
stored durably (`DurableQueue.enqueue` returns after the fsync) *before* the
charger is answered locally; a 1.6 StartTransaction gets a negative local
transaction id, and its id token the verdict of the local list and cache
under the offline rules: the site's (`Csms.local_authorize_offline`,
`allow_offline_tx_for_unknown_id`) or, where it says "charger", the charger's
own settings, read from it when first needed and again after the CSMS changed
a setting (the charger, kept connected, never applies them itself). LOCAL
messages are answered by hubgate:
Authorize the same way, Heartbeat with the clock. FORWARD messages get their
rejection. On (re)connection the queue is replayed in order; while it is not
empty, the charger's new stored-kind messages are queued behind it, so the
CSMS sees them in order. A charger keeps using a local transaction id after
the CSMS returns; hubgate maps it to the CSMS's id in both directions, and
keeps a message back (stored) while the CSMS has not given that id.

When the CSMS refuses a replayed transaction (a CallError to its start, or an
id token it does not accept), the transaction's other messages are held for
an operator (`CsmsProxy.release` / `discard`, shown by `holds`), an event says
so, and with `stop_transaction_on_invalid_id` a refused id token stops the
transaction at the charger if it still runs.

A charger connection that ends while a message to the CSMS is in flight keeps
its upstream connection until the CSMS has answered it (and the answer is
committed), so the message is not sent again when the charger is back; the
next connection of that charger waits for it. `CsmsProbe` notices the CSMS
coming back before the links' backoff would.

Unlike §6's connection-loss rule, hubgate keeps the chargers connected when
the CSMS is gone: it is the store-and-forward layer, not the charger.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import trio

from hubgate.backoff import Backoff
from hubgate.cloud.authlist import (
    OfflineRules,
    auth_record,
    charger_settings,
    info_field,
    offline_token_info,
    token_key,
)
from hubgate.cloud.credentials import CsmsAuth
from hubgate.cloud.csms_limits import CsmsLimits, ProfileKeeper, profile_of
from hubgate.cloud.csms_requests import CsmsRequests, profile_status, relayed
from hubgate.cloud.csms_watch import CsmsWatch
from hubgate.cloud.errors import CsmsCallError
from hubgate.cloud.offline import OfflineHandling, OfflineRule, offline_handling, unavailable_answer
from hubgate.cloud.queue import DurableQueue, open_durable_queue
from hubgate.cloud.store import Hold, Outgoing, QueuedMessage, Store, transaction_key
from hubgate.cloud.store_changes import cached, discarded, released
from hubgate.cloud.upstream import CsmsProbe, OnConnect, UpstreamLink
from hubgate.config.services import Csms
from hubgate.control.limits import SITE, LimitBook
from hubgate.ocpp.errors import (
    OcppCallError,
    OcppCallTimeoutError,
    OcppSessionClosedError,
    RpcError,
)
from hubgate.ocpp.operations import ChargerOperations
from hubgate.ocpp.policy import CsmsPolicy
from hubgate.ocpp.registry import Station
from hubgate.ocpp.rpc import Payload
from hubgate.ocpp.server import csms_handlers
from hubgate.ocpp.session import INCOMING_ID, Handler, OcppSession, SessionLimits
from hubgate.ocpp.validation import actions
from hubgate.ocpp.versions import OcppVersion
from hubgate.records.events import EventLog
from hubgate.state import EventCategory, EventLevel

LOG = logging.getLogger("hubgate.cloud")

V16 = OcppVersion.V16
_LOST = (OcppSessionClosedError, OcppCallTimeoutError)
"""Upstream failures after which a message's fate is unknown: it is stored (again)."""
SETTINGS_CHANGES = ("ChangeConfiguration", "SetVariables")
"""CSMS calls after which a charger's offline rules are read again."""


@dataclass(frozen=True)
class ProxySettings:
    """Timing of the upstream connections."""

    backoff: Backoff = field(default_factory=lambda: Backoff(initial_s=1.0, maximum_s=60.0))
    upstream: SessionLimits = field(default_factory=SessionLimits)
    connect_timeout_s: float = 10.0
    first_connect_wait_s: float = 5.0
    """A charger's first call waits this long for its upstream connection to come up."""
    replay_retry_s: float = 5.0
    """Wait before replaying again after the CSMS did not answer a message in time."""
    probe_interval_s: float = 1.0
    """While links wait out their backoff, one TCP probe of the CSMS this often (`CsmsProbe`)."""
    probe_spread_s: float = 0.5
    """Links woken by the probe dial within this many seconds of each other."""
    gateway_version: OcppVersion = OcppVersion.V201
    """The version of the gateway's own connection (`Csms.identity`)."""
    rules_timeout_s: float = 5.0
    """How long reading a charger's offline rules may take before its defaults count."""


class _ChargerLeftError(Exception):
    """The charger has gone: replay stops before its next message."""


class CsmsProxy:
    """Routes the chargers' connections to the CSMS; make one with `open_csms_proxy`."""

    def __init__(
        self,
        csms: Csms,
        queue: DurableQueue,
        limits: CsmsLimits,
        nursery: trio.Nursery,
        *,
        policy: CsmsPolicy | None = None,
        settings: ProxySettings | None = None,
        events: EventLog | None = None,
    ) -> None:
        self.csms = csms
        self.queue = queue
        self.limits = limits
        self.policy = policy or CsmsPolicy()
        self.settings = settings or ProxySettings()
        self.events = events if events is not None else EventLog()
        """Where what an operator should see goes (the gateway's event log)."""
        self.chargers: dict[str, ChargerProxy] = {}
        """The proxy of each connected charger, by identity."""
        self.gateway: UpstreamLink | None = None
        self.auth = CsmsAuth(csms)
        self.probe = CsmsProbe(
            csms.url,
            interval_s=self.settings.probe_interval_s,
            spread_s=self.settings.probe_spread_s,
            timeout_s=self.settings.connect_timeout_s,
        )
        self.held: set[tuple[str, str]] = set()
        """(identity, transaction) of every held transaction (the store has them durably)."""
        self.nursery = nursery
        self.csms_watch = CsmsWatch()
        """When the CSMS counts as lost and back (`watch`)."""
        self._turns: dict[str, trio.Lock] = {}

    def attach(self, station: Station, version: OcppVersion) -> ChargerProxy:
        """The listener's `Attach`: the proxy of one new charger connection."""
        return ChargerProxy(self, station, version)

    def turn(self, identity: str) -> trio.Lock:
        """Held by the charger connection whose upstream link is up: one at a time per
        identity, so that the next one starts after the last one's message in flight."""
        return self._turns.setdefault(identity, trio.Lock())

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
            probe=self.probe,
        )

    async def watch(self, period_s: float = 1.0) -> None:
        """Report the CSMS lost (with what its queue holds) and back, until cancelled."""
        while True:
            links = [charger.upstream.online for charger in self.chargers.values()]
            if self.gateway is not None:
                links.append(self.gateway.online)
            change = self.csms_watch.update(links, trio.current_time())
            if change is not None:
                queued = await self.queue.run(Store.pending_count)
                level, text = change.text(self.csms.url, queued)
                self.events.emit(level, "csms", text, category=EventCategory.CSMS)
            await trio.sleep(period_s)

    # -- operator decisions on held transactions ----------------------------------

    async def holds(self) -> list[Hold]:
        """Every transaction held for an operator decision."""
        return await self.queue.run(Store.holds)

    async def release(
        self, identity: str, transaction: str, csms_transaction_id: int | None = None
    ) -> Hold:
        """Send a held transaction's messages after all (a 1.6 local transaction id as
        `csms_transaction_id`, else the id the CSMS gave). KeyError: no such hold;
        ValueError: a 1.6 transaction the CSMS gave no id and none given."""
        hold = await self.queue.change(released(identity, transaction, csms_transaction_id))
        assert isinstance(hold, Hold)
        self.held.discard((identity, transaction))
        mapped = (
            "" if csms_transaction_id is None else f" as CSMS transaction {csms_transaction_id}"
        )
        self.events.emit(
            EventLevel.INFO,
            identity,
            f"transaction {transaction} released{mapped}: {hold.messages} messages go to the CSMS",
            category=EventCategory.CSMS,
        )
        charger = self.chargers.get(identity)
        if charger is not None:
            charger.kick()
        return hold

    async def discard(self, identity: str, transaction: str) -> Hold:
        """Never send a held transaction's messages (they go to dead letters). KeyError:
        no such hold."""
        hold = await self.queue.change(discarded(identity, transaction))
        assert isinstance(hold, Hold)
        self.held.discard((identity, transaction))
        self.events.emit(
            EventLevel.INFO,
            identity,
            f"transaction {transaction} discarded: {hold.messages} messages never go to the CSMS",
            category=EventCategory.CSMS,
        )
        return hold

    # -- the gateway's own connection ---------------------------------------------

    async def run_gateway(self, identity: str) -> None:
        """The gateway's own connection: its charging profiles set the site limit."""

        async def set_profile(p: Payload) -> Payload:
            profile = profile_of(self.settings.gateway_version, p)[1]
            return profile_status(self.limits, SITE, profile, "csms")

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
        self.connection = uuid.uuid4().hex
        """This charger connection, for telling a repeated message from a new one."""
        self._queue = proxy.queue
        self._local = csms_handlers(station, version, proxy.policy)
        self._order = trio.Lock()
        self._backlog = False
        self._kick = trio.Event()
        self._gone = False
        self._busy = 0
        """Upstream work in flight: a replay pass or forwarded calls."""
        self._upstream_scope = trio.CancelScope()
        self._link_failed = trio.Event()
        self._foreign: set[str] = set()
        """Upstream ids replayed from earlier connections of the charger: a new message
        that reuses one goes up under a new id."""
        self.downstream = CsmsRequests(station, version, proxy.queue, proxy.limits)
        self.handlers: dict[str, Handler] = {
            a: functools.partial(self._from_charger, a) for a in actions(version)
        }
        downward = self.downstream.handlers()
        for action in SETTINGS_CHANGES:
            if action in downward:
                downward[action] = functools.partial(self._settings_change, downward[action])
        self.upstream = proxy.link(self.identity, version, downward, self._replay_while_connected)
        self._rules: OfflineRules | None = None
        """The charger's own offline rules as read; None: to be read when next needed."""

    @property
    def backlog(self) -> bool:
        """Whether stored messages wait for the CSMS."""
        return self._backlog

    def kick(self) -> None:
        """Messages became sendable (an operator released a transaction): replay them."""
        self._backlog = True
        self._kick.set()

    async def run(self, session: OcppSession) -> None:
        """While the charger is connected: its upstream connection and replay (the link
        itself lives in the proxy's nursery, so it can finish a message in flight)."""
        self.downstream.charger = session
        self.proxy.chargers[self.identity] = self
        self.proxy.nursery.start_soon(self._upstream_turn)
        try:
            await self._link_failed.wait()
            raise RuntimeError(f"{self.identity}: the upstream link failed; closing to start over")
        finally:
            if self.proxy.chargers.get(self.identity) is self:
                del self.proxy.chargers[self.identity]
            self._leave()

    async def _upstream_turn(self) -> None:
        try:
            async with self.proxy.turn(self.identity):
                with self._upstream_scope:
                    self._backlog = self._backlog or await self._queue.run(
                        functools.partial(Store.backlog, charge_point=self.identity)
                    )
                    await self.upstream.run()
        except Exception:  # one charger's failure must not end the others' links
            LOG.exception("%s: upstream link failed", self.identity)
            self._link_failed.set()

    def _leave(self) -> None:
        """The charger is gone: end the upstream link once nothing is in flight on it."""
        self._gone = True
        self._kick.set()
        if self._busy == 0:
            self._upstream_scope.cancel()
        else:  # bounded: the call in flight times out by then
            deadline = self.proxy.settings.upstream.call_timeout_s + 1.0
            self._upstream_scope.deadline = trio.current_time() + deadline

    def _begin(self) -> None:
        self._busy += 1

    def _end(self) -> None:
        self._busy -= 1
        if self._gone and self._busy == 0:
            self._upstream_scope.cancel()

    # -- charger → CSMS -------------------------------------------------------

    async def _from_charger(self, action: str, payload: Payload) -> Payload:
        unique_id = INCOMING_ID.get()
        with trio.move_on_after(self.proxy.settings.first_connect_wait_s):
            await self.upstream.attempted.wait()
        handling = offline_handling(action, payload)
        self.downstream.follow_transaction(action, payload)
        if handling.rule in (OfflineRule.LOCAL, OfflineRule.FORWARD):
            if self.upstream.online:
                try:
                    upstream_id = self._upstream_id(unique_id)
                    return await self._forward(upstream_id, action, payload, payload)
                except _LOST:
                    pass
            if handling.rule is OfflineRule.FORWARD:
                local = self._local.get(action)
                if local is not None:
                    await local(payload)  # hubgate's own view (an EV's charging needs)
                return unavailable_answer(action, payload)
            return await self._answer_locally(action, payload)
        async with self._order:
            upstream = None
            if not self._backlog and self.upstream.online:
                upstream = await self._upstream_payload(payload)
            if upstream is not None:
                upstream_id = self._upstream_id(unique_id)
                try:
                    return await self._forward(upstream_id, action, payload, upstream)
                except _LOST as exc:
                    LOG.info(
                        "%s: %s not confirmed by the CSMS (%s); stored", self.identity, action, exc
                    )
                    return await self._store(unique_id, action, payload, handling, upstream_id)
            return await self._store(unique_id, action, payload, handling)

    def _upstream_id(self, unique_id: str) -> str:
        """The id a message goes up with: the charger's, unless replay used it already on
        this link for an earlier connection's message."""
        return str(uuid.uuid4()) if unique_id in self._foreign else unique_id

    async def _upstream_payload(self, payload: Payload) -> Payload | None:
        """The payload as the CSMS gets it now; None when it must wait in the queue (its
        transaction is held, or the CSMS has not given its 1.6 local id a CSMS id)."""
        key = transaction_key(payload)
        if key is not None and (self.identity, key) in self.proxy.held:
            return None
        local_id = payload.get("transactionId")
        if self.version is not V16 or not isinstance(local_id, int) or local_id >= 0:
            return payload
        csms_id = await self._queue.run(
            functools.partial(
                Store.csms_transaction_id, charge_point=self.identity, local_id=local_id
            )
        )
        return None if csms_id is None else {**payload, "transactionId": csms_id}

    async def _forward(
        self, upstream_id: str, action: str, payload: Payload, upstream: Payload
    ) -> Payload:
        """Send a charger's call to the CSMS and update hubgate's view from the answer.

        Shielded: a charger that disconnects meanwhile does not cut the call short (its
        upstream link stays until the CSMS answered), so a message the CSMS answered is
        never sent again for want of its answer.
        """
        session = self.upstream.session
        if session is None:
            raise OcppSessionClosedError(f"{self.identity}: no CSMS connection")
        self._begin()
        try:
            with trio.CancelScope(shield=True):
                # A payload forwarded unchanged was validated on its way in (same version).
                unchanged = upstream is payload
                answer = await session.call(
                    action, upstream, unique_id=upstream_id, checked=unchanged
                )
                local = self._local.get(action)
                if local is not None:
                    reply = await local(payload)  # hubgate's own view of the station
                    if self.version is V16 and action == "StartTransaction":
                        self._rekey(reply["transactionId"], answer["transactionId"])
                if action == "Authorize":
                    await self._cache(payload, answer)
        except OcppCallError as exc:
            raise relayed(exc) from None
        finally:
            self._end()
        return answer

    async def _store(
        self,
        unique_id: str,
        action: str,
        payload: Payload,
        handling: OfflineHandling,
        upstream_id: str | None = None,
    ) -> Payload:
        start16 = self.version is V16 and action == "StartTransaction"
        if upstream_id is None and unique_id in self._foreign:
            upstream_id = self._upstream_id(unique_id)
        receipt = await self._queue.enqueue(
            Outgoing(
                self.identity,
                unique_id,
                action,
                payload,
                coalesce_key=handling.coalesce_key,
                issue_transaction_id=start16,
                connection=self.connection,
                upstream_id=upstream_id,
            )
        )
        self.kick()
        answer = await self._answer_locally(action, payload)
        if start16:
            self._rekey(answer["transactionId"], receipt.local_transaction_id)
            answer["transactionId"] = receipt.local_transaction_id
        return answer

    async def _answer_locally(self, action: str, payload: Payload) -> Payload:
        """hubgate's answer while the CSMS is away; id tokens by the offline rules."""
        field_name = info_field(self.version)
        token = payload.get("idTag" if self.version is V16 else "idToken")
        if action == "Authorize":
            assert token is not None  # required by the schema
            return {field_name: await self._offline_token_info(token)}
        local = self._local.get(action)
        if local is None:
            return {}  # the remaining notifications' responses have no required fields
        answer = await local(payload)
        if field_name in answer and token is not None:
            answer[field_name] = await self._offline_token_info(token)
        return answer

    async def _offline_token_info(self, token: str | dict[str, Any]) -> dict[str, Any]:
        found = await self._queue.run(
            functools.partial(
                Store.authorize,
                charge_point=self.identity,
                key=token_key(self.version, token),
                now=time.time(),
            )
        )
        return offline_token_info(self.version, found, await self._offline_rules())

    async def _offline_rules(self) -> OfflineRules:
        """The site's offline rules, the charger's own where the site says "charger"."""
        csms = self.proxy.csms
        local, unknown = csms.local_authorize_offline, csms.allow_offline_tx_for_unknown_id
        rules = OfflineRules()
        if "charger" in (local, unknown):
            if self._rules is None:
                self._rules = await self._read_rules()
            rules = self._rules
        return rules.overridden(local, unknown)

    async def _read_rules(self) -> OfflineRules:
        """Ask the charger for its offline rules (defaults when it cannot say)."""
        charger = self.downstream.charger
        names = list(charger_settings(self.version))
        settings: dict[str, str | None] = {}
        if charger is not None:
            operations = ChargerOperations(charger, timeout_s=self.proxy.settings.rules_timeout_s)
            try:
                settings = await operations.get_settings(names)
            except (OcppCallError, RpcError, *_LOST) as exc:
                LOG.warning("%s: offline authorization settings not read: %s", self.identity, exc)
        rules = OfflineRules.of_charger(self.version, settings)
        LOG.info("%s: offline rules %s (read: %s)", self.identity, rules, settings)
        return rules

    async def _settings_change(self, relay: Handler, payload: Payload) -> Payload:
        """A CSMS call that may change the charger's offline rules: read them again."""
        try:
            return await relay(payload)
        finally:
            self._rules = None

    def _rekey(self, old: object, new: object) -> None:
        """hubgate's registry keeps a 1.6 transaction under the id the charger was given."""
        transaction = self.station.transactions.pop(str(old), None)
        if transaction is not None:
            transaction.transaction_id = str(new)
            self.station.transactions[str(new)] = transaction

    async def _cache(self, request: Payload, answer: Payload) -> None:
        v16 = self.version is V16
        info = answer.get(info_field(self.version))
        if not isinstance(info, dict):
            return
        key = token_key(self.version, request["idTag" if v16 else "idToken"])
        record = auth_record(self.version, key, info)
        await self._queue.remember(cached(self.identity, record, time.time()))

    # -- replay ----------------------------------------------------------------

    async def _replay_while_connected(self, session: OcppSession) -> None:
        """Replay the queue whenever it is not empty, for as long as `session` is up and
        the charger connected."""

        async def send(message: QueuedMessage) -> dict[str, Any]:
            if self._gone:
                raise _ChargerLeftError
            if message.connection != self.connection:
                self._foreign.add(message.upstream_id)
            try:
                return await session.call(
                    message.action, message.payload, unique_id=message.upstream_id
                )
            except OcppCallError as exc:
                raise CsmsCallError(exc.code, exc.description) from None
            except RpcError as exc:  # e.g. stored under another OCPP version than this link's
                raise CsmsCallError(exc.code, f"not sendable on this link: {exc}") from None

        while not self._gone:
            if not self._backlog:
                self._kick = trio.Event()
                await self._kick.wait()
                continue
            self._begin()
            try:
                delivered = await self._queue.replay(self.identity, send, on_hold=self._held)
            except (_ChargerLeftError, OcppSessionClosedError):
                return
            except OcppCallTimeoutError as exc:
                LOG.warning("%s: replay paused: %s", self.identity, exc)
                await trio.sleep(self.proxy.settings.replay_retry_s)
                continue
            finally:
                self._end()
            LOG.info("%s: replayed %d messages", self.identity, delivered)
            async with self._order:
                self._backlog = await self._queue.run(
                    functools.partial(Store.backlog, charge_point=self.identity)
                )

    def _held(
        self, message: QueuedMessage, reason: str, outcome: dict[str, Any] | CsmsCallError
    ) -> None:
        """The CSMS refused a replayed transaction: hold it, say so, stop it if it runs."""
        transaction = message.transaction
        assert transaction is not None
        self.proxy.held.add((self.identity, transaction))
        self.proxy.events.emit(
            EventLevel.WARNING,
            self.identity,
            f"transaction {transaction} held: {reason}; its messages wait for an operator"
            " to release or discard them",
            category=EventCategory.CSMS,
        )
        if isinstance(outcome, dict) and self.proxy.csms.stop_transaction_on_invalid_id:
            self.proxy.nursery.start_soon(self._stop_refused, transaction)

    async def _stop_refused(self, transaction_id: str) -> None:
        """StopTransactionOnInvalidId: stop a transaction the CSMS refused, if it runs."""
        transaction = self.station.transactions.get(transaction_id)
        charger = self.downstream.charger
        if transaction is None or transaction.stopped is not None or charger is None:
            return
        try:
            status = await ChargerOperations(charger).remote_stop(transaction_id)
        except (OcppCallError, RpcError, *_LOST) as exc:
            status = f"not stopped: {exc}"
        self.proxy.events.emit(
            EventLevel.WARNING,
            self.identity,
            f"transaction {transaction_id}: the CSMS refused its id token; stop requested"
            f" ({status})",
            category=EventCategory.CSMS,
        )


@asynccontextmanager
async def open_csms_proxy(
    csms: Csms,
    book: LimitBook,
    *,
    policy: CsmsPolicy | None = None,
    settings: ProxySettings | None = None,
    events: EventLog | None = None,
    queue: DurableQueue | None = None,
    keeper: ProfileKeeper | None = None,
) -> AsyncIterator[CsmsProxy]:
    """The proxy with its durable queue (`csms.queue_path`, or `queue` when given: the
    replicated one of a cluster) and, with `csms.identity`, the gateway's own connection;
    pass `proxy.attach` to `OcppListener`. `keeper`: where the CSMS's charging profiles
    outlive this leadership (a cluster's), and the ones to follow from the start."""
    queueing: AbstractAsyncContextManager[DurableQueue] = (
        open_durable_queue(csms.queue_path) if queue is None else nullcontext(queue)
    )
    async with queueing as durable, trio.open_nursery() as nursery:
        limits = CsmsLimits(book, keeper)
        await nursery.start(limits.run)
        proxy = CsmsProxy(
            csms, durable, limits, nursery, policy=policy, settings=settings, events=events
        )
        proxy.held = {(h.charge_point, h.transaction) for h in await durable.run(Store.holds)}
        await nursery.start(proxy.probe.run)
        nursery.start_soon(proxy.watch)
        if csms.identity is not None:
            nursery.start_soon(proxy.run_gateway, csms.identity)
        yield proxy
        nursery.cancel_scope.cancel()
