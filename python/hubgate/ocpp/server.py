"""The OCPP WebSocket listener for charge points.

Built on trio-websocket (wsproto) over our own Trio listeners rather than
Hypercorn: we need the TLS stream itself for security profile 3 (the client
certificate), a real HTTP 401/404 before the upgrade, and per-connection
isolation; permessage-deflate, which trio-websocket does not offer, is switched
on through wsproto's own extension in `_DeflateConnection`.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import unquote

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketRequest
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request
from wsproto.extensions import PerMessageDeflate

from hubgate.config.services import OcppServer
from hubgate.ocpp import handlers_v2, handlers_v16
from hubgate.ocpp.policy import CsmsPolicy
from hubgate.ocpp.registry import Station, StationRegistry
from hubgate.ocpp.rpc import subprotocol
from hubgate.ocpp.session import Handler, OcppSession, SessionLimits
from hubgate.ocpp.versions import OcppVersion

LOG = logging.getLogger("hubgate.ocpp")

PREFERENCE = (OcppVersion.V21, OcppVersion.V201, OcppVersion.V16)
"""When a charger offers several versions, the newest one it is allowed wins."""


@dataclass(frozen=True)
class ListenerLimits:
    """Transport limits of every connection."""

    max_message_bytes: int = 1024 * 1024
    handshake_timeout_s: float = 10.0
    ping_interval_s: float = 30.0
    ping_timeout_s: float = 15.0
    session: SessionLimits = field(default_factory=SessionLimits)


class _DeflateConnection(WebSocketConnection):
    """A server connection that accepts RFC 7692 permessage-deflate when offered."""

    async def _accept(
        self, request: Request, subprotocol: str | None, extra_headers: list[tuple[bytes, bytes]]
    ) -> None:
        self._subprotocol = subprotocol
        self._path = request.target
        await self._send(
            AcceptConnection(
                subprotocol=subprotocol,
                extra_headers=extra_headers,
                extensions=[PerMessageDeflate()],
            )
        )
        self._open_handshake.set()


class Attachment(Protocol):
    """What a Local Controller (`hubgate.cloud.proxy`) puts on one charger connection."""

    @property
    def handlers(self) -> Mapping[str, Handler]:
        """The answers to the charger's calls (instead of hubgate's own CSMS handlers)."""
        ...

    async def run(self, session: OcppSession) -> None:
        """Runs while the connection lasts; cancelled when it ends."""
        ...


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


def _basic_auth_ok(request: WebSocketRequest, station: Station) -> bool:
    """HTTP Basic with the identity as user name and the charger's password."""
    password = station.admission.password
    header = dict(request.headers).get(b"authorization", b"")
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
    ) -> None:
        self.config = config
        self.attach = attach
        self.attend = attend
        self.registry = registry
        self.policy = policy or CsmsPolicy()
        self.limits = limits or ListenerLimits()
        self._live: dict[str, trio.CancelScope] = {}

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen until cancelled; `task_status.started` gets the bound port."""
        listeners: list[trio.abc.Listener[trio.abc.Stream]] = list(
            await trio.open_tcp_listeners(self.config.port, host=self.config.host)
        )
        port = listeners[0].socket.getsockname()[1]  # type: ignore[attr-defined]
        context = server_tls_context(self.config)
        if context is not None:
            listeners = [trio.SSLListener(lst, context, https_compatible=True) for lst in listeners]
        task_status.started(port)
        await trio.serve_listeners(self._handle_stream, listeners)

    async def _handle_stream(self, stream: trio.abc.Stream) -> None:
        """One connection from accept to close; nothing escapes to the other connections."""
        try:
            async with trio.open_nursery() as nursery:
                await self._connection(nursery, stream)
                nursery.cancel_scope.cancel()
        except Exception:
            LOG.exception("connection handler failed")
        finally:
            await trio.aclose_forcefully(stream)

    async def _connection(self, nursery: trio.Nursery, stream: trio.abc.Stream) -> None:
        with trio.move_on_after(self.limits.handshake_timeout_s) as handshake:
            try:
                if isinstance(stream, trio.SSLStream):
                    await stream.do_handshake()
                # trio_websocket.wrap_server_stream's steps, with our connection class.
                connection = _DeflateConnection(
                    stream,
                    WSConnection(ConnectionType.SERVER),
                    message_queue_size=4,
                    max_message_size=self.limits.max_message_bytes,
                )
                nursery.start_soon(connection._reader_task)
                request = await connection._get_request()
            except (trio.BrokenResourceError, ConnectionClosed) as exc:
                LOG.info("handshake failed: %r", exc)
                return
        if handshake.cancelled_caught:
            LOG.info("handshake timed out")
            return
        try:
            admitted = await self._admit(request, stream)
        except (trio.BrokenResourceError, ConnectionClosed) as exc:
            LOG.info("connection lost during the handshake: %r", exc)
            return
        if admitted is not None:
            await self._run(*admitted)

    async def _admit(
        self, request: WebSocketRequest, stream: trio.abc.Stream
    ) -> tuple[WebSocketConnection, Station, OcppVersion] | None:
        identity = unquote(request.path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1])
        station = self.registry.get(identity)
        if station is None:
            LOG.info("unknown charge point %r rejected", identity)
            await request.reject(404)
            return None
        profile = self.config.security_profile
        if profile in (1, 2) and not _basic_auth_ok(request, station):
            LOG.warning("%s: Basic authentication failed", identity)
            await request.reject(401, extra_headers=[(b"WWW-Authenticate", b'Basic realm="ocpp"')])
            return None
        if profile == 3 and not _certificate_names_identity(stream, identity):
            LOG.warning("%s: client certificate does not name this identity", identity)
            await request.reject(403)
            return None
        offered = set(request.proposed_subprotocols)
        version = next(
            (
                v
                for v in PREFERENCE
                if v in station.admission.versions and subprotocol(v) in offered
            ),
            None,
        )
        if version is None:
            LOG.warning("%s: no common OCPP version in %s", identity, sorted(offered))
            ws = await request.accept()
            await ws.aclose(1002, "no supported OCPP subprotocol")
            return None
        return await request.accept(subprotocol=subprotocol(version)), station, version

    async def _run(self, ws: WebSocketConnection, station: Station, version: OcppVersion) -> None:
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
        )
        with trio.CancelScope() as scope:
            previous = self._live.get(identity)
            self._live[identity] = scope
            if previous is not None:
                LOG.info("%s: reconnected; the old connection is closed", identity)
                previous.cancel()
            self.registry.connected(identity, version, session)
            LOG.info("%s: connected with OCPP %s", identity, version)
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._keepalive, ws, session, scope)
                    if attachment is not None:
                        nursery.start_soon(attachment.run, session)
                    if self.attend is not None:
                        nursery.start_soon(self.attend, station, session)
                    await session.run()
                    nursery.cancel_scope.cancel()
            finally:
                if self._live.get(identity) is scope:
                    del self._live[identity]
                self.registry.disconnected(identity, session)
                LOG.info("%s: disconnected", identity)

    async def _keepalive(
        self, ws: WebSocketConnection, session: OcppSession, scope: trio.CancelScope
    ) -> None:
        """WebSocket pings to peers quiet for a ping interval; one that does not answer is dropped."""
        while True:
            await trio.sleep(self.limits.ping_interval_s)
            if trio.current_time() - session.last_seen < self.limits.ping_interval_s:
                continue
            with trio.move_on_after(self.limits.ping_timeout_s) as ping:
                try:
                    await ws.ping()
                except ConnectionClosed:
                    return
            if ping.cancelled_caught:
                LOG.warning("ping timed out; closing")
                scope.cancel()
                return
