"""The OCPP WebSocket listener for charge points.

Our own WebSocket (`hubgate.ocpp.websocket`: wsproto's handshake, the Rust core's
framing) over our own Trio listeners rather than Hypercorn: we need the TLS stream
itself for security profile 3 (the client certificate), a real HTTP 401/404 before
the upgrade, per-connection isolation, and one task that reads, answers and writes
(one for all admitted plain-TCP connections: `websocket.ReadHub`).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import math
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import unquote

import trio
from trio_websocket import ConnectionClosed

from hubgate.auth_limits import FailedAttempts
from hubgate.config.services import OcppServer
from hubgate.listeners import ConnectionGuard, GuardedStream, serve_guarded
from hubgate.log_limits import RateLimitedLog, clip
from hubgate.ocpp import handlers_v2, handlers_v16
from hubgate.ocpp.policy import CsmsPolicy
from hubgate.ocpp.registry import Station, StationRegistry
from hubgate.ocpp.rpc import subprotocol
from hubgate.ocpp.session import Handler, OcppSession, SessionLimits
from hubgate.ocpp.versions import OcppVersion
from hubgate.ocpp.websocket import ReadHub, Upgrade, WebSocket, read_upgrade
from hubgate.records.events import EventLog
from hubgate.state import EventCategory, EventLevel

LOG = logging.getLogger("hubgate.ocpp")
_quiet = RateLimitedLog(LOG)

PREFERENCE = (OcppVersion.V21, OcppVersion.V201, OcppVersion.V16)
"""When a charger offers several versions, the newest one it is allowed wins."""


@dataclass(frozen=True)
class ListenerLimits:
    """Transport limits of every connection."""

    max_message_bytes: int = 1024 * 1024
    handshake_timeout_s: float = 10.0
    """From accept to an admitted WebSocket (TLS and HTTP upgrade included)."""
    max_pending_connections: int = 64
    """Connections not admitted yet, on top of one per configured identity (a whole site
    reconnecting at once never evicts itself); one more closes the one quiet longest.
    Admitted ones are bounded by the registry: one per configured identity."""
    close_timeout_s: float = 2.0
    """How long a replaced connection gets for its close handshake."""
    ping_interval_s: float = 30.0
    ping_timeout_s: float = 15.0
    session: SessionLimits = field(default_factory=SessionLimits)


class Attachment(Protocol):
    """What a Local Controller (`hubgate.cloud.proxy`) puts on one charger connection."""

    @property
    def handlers(self) -> Mapping[str, Handler]:
        """The answers to the charger's calls (instead of hubgate's own CSMS handlers)."""
        ...

    async def run(self, session: OcppSession) -> None:
        """Runs while the connection lasts; cancelled when it ends."""
        ...


@dataclass
class _Live:
    """An admitted connection, as the listener's pings see it."""

    scope: trio.CancelScope
    ws: WebSocket
    session: OcppSession
    nursery: trio.Nursery
    pinging: bool = False


Attach = Callable[[Station, OcppVersion], Attachment]
"""Called once per admitted connection, before its session starts."""

Attend = Callable[[Station, OcppSession], Awaitable[None]]
"""Runs beside each admitted connection's session, cancelled when it ends (hubgate's own
care of the charger: `hubgate.ocpp.station_care`)."""


def csms_handlers(station: Station, version: OcppVersion, policy: CsmsPolicy) -> dict[str, Handler]:
    """hubgate's own answers to a charger's calls (hubgate as the CSMS)."""
    if version is OcppVersion.V16:
        return handlers_v16.handlers(station, policy)
    return handlers_v2.handlers(station, policy, version)


def server_tls_context(config: OcppServer) -> ssl.SSLContext | None:
    """TLS for security profiles 2 (server certificate) and 3 (mutual TLS); else None."""
    if config.security_profile < 2 or config.tls_cert is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(config.tls_cert, config.tls_key)
    if config.security_profile == 3 and config.tls_client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(config.tls_client_ca)
    return context


def _basic_auth_ok(request: Upgrade, station: Station) -> bool:
    """HTTP Basic with the identity as user name and the charger's password."""
    password = station.admission.password
    header = request.headers.get(b"authorization", b"")
    scheme, _, encoded = header.partition(b" ")
    if password is None or scheme.lower() != b"basic":
        return False
    try:
        user, _, given = base64.b64decode(encoded, validate=True).partition(b":")
    except (binascii.Error, ValueError):
        return False
    expected = f"{station.identity}:{password}".encode()
    return hmac.compare_digest(user + b":" + given, expected)


def _certificate_names_identity(stream: trio.abc.Stream, identity: str) -> bool:
    """Security profile 3: the client certificate's CN must be the charger identity."""
    if not isinstance(stream, trio.SSLStream):
        return False
    cert = stream.getpeercert()
    if not cert:
        return False
    names = [value for rdn in cert.get("subject", ()) for key, value in rdn if key == "commonName"]
    return identity in names


class OcppListener:
    """Admits charge points and runs one `OcppSession` per connection."""

    def __init__(
        self,
        config: OcppServer,
        registry: StationRegistry,
        *,
        policy: CsmsPolicy | None = None,
        limits: ListenerLimits | None = None,
        attach: Attach | None = None,
        attend: Attend | None = None,
        events: EventLog | None = None,
    ) -> None:
        self.config = config
        self.attach = attach
        self.attend = attend
        self.events = events if events is not None else EventLog()
        """Where what operators should see goes (a dropped connection)."""
        self.registry = registry
        self.policy = policy or CsmsPolicy()
        self.limits = limits or ListenerLimits()
        self.auth_failures = FailedAttempts()
        """Failed Basic logins per source address: 10 a minute, then 429 without a check."""
        identities = sum(1 for _ in registry)
        self.guard = ConnectionGuard("ocpp", self.limits.max_pending_connections + identities)
        self._tls = server_tls_context(config)
        self._live: dict[str, _Live] = {}
        self._hub: ReadHub | None = None
        """Reads the admitted plain-TCP connections while `serve` runs."""

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen until cancelled; `task_status.started` gets the bound port."""
        listeners = await trio.open_tcp_listeners(self.config.port, host=self.config.host)
        self._hub = ReadHub()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._hub.run)
            nursery.start_soon(self._ping_quiet)
            task_status.started(listeners[0].socket.getsockname()[1])
            await serve_guarded(self._handle_stream, listeners, self.guard)

    async def _handle_stream(self, connection: GuardedStream) -> None:
        """One connection from accept to close; nothing escapes to the other connections."""
        stream: trio.abc.Stream = connection
        if self._tls is not None:
            stream = trio.SSLStream(connection, self._tls, server_side=True, https_compatible=True)
        try:
            async with trio.open_nursery() as nursery:
                await self._connection(nursery, connection, stream)
                nursery.cancel_scope.cancel()
        except Exception:
            LOG.exception("connection handler failed")
        finally:
            await trio.aclose_forcefully(stream)

    async def _connection(
        self, nursery: trio.Nursery, accepted: GuardedStream, stream: trio.abc.Stream
    ) -> None:
        source = str(accepted.socket.getpeername()[0])
        request = None
        with trio.move_on_after(self.limits.handshake_timeout_s):
            try:
                if isinstance(stream, trio.SSLStream):
                    await stream.do_handshake()
                request = await read_upgrade(stream)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                _quiet.info(source, "%s: handshake failed: %s", source, clip(exc))
                return
        if request is None:
            _quiet.info(source, "%s: no WebSocket handshake (timed out or left)", source)
            return
        try:
            admitted = await self._admit(request, stream, source)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            _quiet.info(source, "%s: connection lost during the handshake: %s", source, clip(exc))
            return
        if admitted is None:
            return
        ws, station, version = admitted
        nursery.start_soon(ws.run)
        if station is not None and version is not None:
            accepted.establish()  # one per identity: out of the pending count
            await self._run(ws, station, version)
        else:
            with trio.move_on_after(self.limits.close_timeout_s):
                await ws.aclose(1002, "no supported OCPP subprotocol")

    async def _admit(
        self, request: Upgrade, stream: trio.abc.Stream, source: str
    ) -> tuple[WebSocket, Station | None, OcppVersion | None] | None:
        """The accepted WebSocket, with its station and version if it may go on."""
        identity = unquote(request.path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1])
        station = self.registry.get(identity)
        if station is None:
            _quiet.info(source, "%s: unknown charge point %s rejected", source, clip(identity))
            await request.reject(404)
            return None
        profile = self.config.security_profile
        if profile in (1, 2):
            wait_s = self.auth_failures.retry_after(source)
            if wait_s > 0:
                _quiet.warning(source, "%s: too many failed logins; refused for now", source)
                retry = str(math.ceil(wait_s)).encode()
                await request.reject(429, [(b"Retry-After", retry)])
                return None
            if not _basic_auth_ok(request, station):
                self.auth_failures.failed(source)
                _quiet.warning(source, "%s: Basic authentication failed (%s)", identity, source)
                await request.reject(401, [(b"WWW-Authenticate", b'Basic realm="ocpp"')])
                return None
        if profile == 3 and not _certificate_names_identity(stream, identity):
            _quiet.warning(source, "%s: client certificate does not name this identity", identity)
            await request.reject(403)
            return None
        offered = set(request.subprotocols)
        version = next(
            (
                v
                for v in PREFERENCE
                if v in station.admission.versions and subprotocol(v) in offered
            ),
            None,
        )
        if version is None:
            _quiet.warning(
                source, "%s: no common OCPP version in %s", identity, clip(sorted(offered))
            )
            return await self._accept(request, None), None, None
        return await self._accept(request, subprotocol(version)), station, version

    async def _accept(self, request: Upgrade, chosen: str | None) -> WebSocket:
        return await request.accept(
            chosen,
            max_message_bytes=self.limits.max_message_bytes,
            max_queued_frames=self.limits.session.max_queued_frames,
            hub=self._hub,
        )

    async def _run(self, ws: WebSocket, station: Station, version: OcppVersion) -> None:
        identity = station.identity
        attachment = None if self.attach is None else self.attach(station, version)
        session = OcppSession(
            ws,
            version,
            csms_handlers(station, version, self.policy)
            if attachment is None
            else attachment.handlers,
            identity=identity,
            limits=self.limits.session,
            link=station.link,
        )
        with trio.CancelScope() as scope:
            previous = self._live.get(identity)
            self.registry.connected(identity, version, session)
            _quiet.info(identity, "%s: connected with OCPP %s", identity, version)
            try:
                async with trio.open_nursery() as nursery:
                    self._live[identity] = _Live(scope, ws, session, nursery)
                    if previous is not None:
                        _quiet.info(identity, "%s: reconnected; the old one is closed", identity)
                        nursery.start_soon(self._close_replaced, previous)
                    if attachment is not None:
                        nursery.start_soon(attachment.run, session)
                    if self.attend is not None:
                        nursery.start_soon(self.attend, station, session)
                    await session.run()
                    nursery.cancel_scope.cancel()
            finally:
                live = self._live.get(identity)
                if live is not None and live.scope is scope:
                    del self._live[identity]
                self.registry.disconnected(identity, session)
                _quiet.info(f"{identity} gone", "%s: disconnected", identity)
                if session.dropped is not None:
                    self.events.emit(
                        EventLevel.WARNING, identity, session.dropped, category=EventCategory.DEVICE
                    )

    async def _close_replaced(self, replaced: _Live) -> None:
        """The identity connected again: close its old connection with a close frame."""
        with trio.move_on_after(self.limits.close_timeout_s):
            await replaced.ws.aclose(1000, "replaced by a newer connection of this identity")
        replaced.scope.cancel()

    async def _ping_quiet(self) -> None:
        """WebSocket pings to peers quiet for a ping interval (each within two intervals of
        its last frame); one that does not answer is dropped. One timer for every
        connection: one each woke the listener 333 times a second at 10,000 stations."""
        interval = self.limits.ping_interval_s
        while True:
            await trio.sleep(interval)
            now = trio.current_time()
            for live in self._live.values():
                if not live.pinging and now - live.session.last_seen >= interval:
                    live.pinging = True
                    live.nursery.start_soon(self._ping, live)

    async def _ping(self, live: _Live) -> None:
        with trio.move_on_after(self.limits.ping_timeout_s) as ping:
            try:
                await live.ws.ping()
            except ConnectionClosed:
                return
        if ping.cancelled_caught:
            LOG.warning("%s: ping timed out; closing", live.session.identity)
            live.scope.cancel()
        live.pinging = False
