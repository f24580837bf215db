"""One WebSocket to the operator's CSMS, kept open with reconnects and backoff.

hubgate plays the charging station here: it connects to `url/identity` with
the station's OCPP subprotocol (OCPP 2.x Local Controller rules: the same
identity and URI path as the charger's own connection, 2.0.1 Part 4 §6), and
an `OcppSession` on the socket answers the CSMS's calls with the given
handlers; `CsmsAuth` gives its TLS context and Basic-auth header. After a loss
or a refusal it waits `Backoff.delay(attempt)` and tries again, from the first
delay once a connection has been up; a `CsmsProbe` cuts the wait short when the
CSMS is back.
"""

from __future__ import annotations

import logging
import math
import random
import ssl
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar
from urllib.parse import quote, urlsplit

import trio
from trio_websocket import ConnectionClosed, ConnectionRejected, HandshakeError, wrap_client_stream

from hubgate.backoff import Backoff
from hubgate.cloud.credentials import CredentialError, CsmsAuth
from hubgate.ocpp.rpc import subprotocol
from hubgate.ocpp.session import Handler, OcppSession, SessionLimits
from hubgate.ocpp.versions import OcppVersion

LOG = logging.getLogger("hubgate.cloud")

OnConnect = Callable[[OcppSession], Awaitable[None]]
"""Runs on each new connection while it lasts (cancelled when it drops)."""


_E = TypeVar("_E", bound=BaseException)


def _first(group: BaseExceptionGroup[_E]) -> _E:
    """The first exception of a group, however deeply nested."""
    first = group.exceptions[0]
    return _first(first) if isinstance(first, BaseExceptionGroup) else first


class CsmsProbe:
    """Tells the links waiting out their backoff that the CSMS is back, sooner than it ends.

    While any link waits, one TCP connection attempt to the CSMS's host and port every
    `interval_s`, for the whole site however many links wait. When one succeeds after
    one failed, or a link gets connected, every waiting link tries again at once (each
    after a random delay up to `spread_s`, so that they do not all dial in the same
    millisecond). A CSMS that accepts TCP connections while it refuses WebSockets
    causes no transition, and the links keep to their backoff.
    """

    def __init__(
        self, url: str, *, interval_s: float = 1.0, spread_s: float = 0.5, timeout_s: float = 2.0
    ) -> None:
        parts = urlsplit(url)
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if parts.scheme == "wss" else 80)
        self._interval_s = interval_s
        self._spread_s = spread_s
        self._timeout_s = timeout_s
        self._waiting = 0
        self._someone_waits = trio.Event()
        self._back = trio.Event()
        self._reachable: bool | None = None
        self._woken_at = -math.inf
        self.probes = 0
        """How many probes it made (bounded by one per interval)."""

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Probe while any link waits, until cancelled."""
        task_status.started()
        while True:
            if self._waiting == 0:
                self._someone_waits = trio.Event()
                await self._someone_waits.wait()
            reachable = await self._probe()
            if reachable and self._reachable is False:
                LOG.info("the CSMS at %s:%d answers again", self._host, self._port)
                self._wake()
            self._reachable = reachable
            await trio.sleep(self._interval_s)

    async def _probe(self) -> bool:
        self.probes += 1
        with trio.move_on_after(self._timeout_s):
            try:
                stream = await trio.open_tcp_stream(self._host, self._port)
            except OSError:
                return False
            await trio.aclose_forcefully(stream)
            return True
        return False

    def connected(self) -> None:
        """A link got connected: the CSMS is there (the others try again, at most once
        per interval)."""
        if trio.current_time() - self._woken_at >= self._interval_s:
            self._wake()

    def _wake(self) -> None:
        self._woken_at = trio.current_time()
        self._back.set()
        self._back = trio.Event()

    async def wait(self, delay_s: float, rng: random.Random) -> None:
        """Wait out a backoff delay, or less when the CSMS is back."""
        self._waiting += 1
        self._someone_waits.set()
        try:
            with trio.move_on_after(delay_s):
                await self._back.wait()
                await trio.sleep(rng.uniform(0.0, self._spread_s))
        finally:
            self._waiting -= 1


def upstream_url(base: str, identity: str) -> str:
    """The CSMS URL of a charging station: the base URL and the percent-encoded identity."""
    return f"{base.rstrip('/')}/{quote(identity, safe='')}"


class UpstreamLink:
    """A reconnecting OCPP client connection to the CSMS under one identity."""

    def __init__(
        self,
        base_url: str,
        identity: str,
        version: OcppVersion,
        handlers: Mapping[str, Handler],
        *,
        auth: CsmsAuth,
        backoff: Backoff,
        limits: SessionLimits,
        connect_timeout_s: float = 10.0,
        on_connect: OnConnect | None = None,
        probe: CsmsProbe | None = None,
    ) -> None:
        self.url = upstream_url(base_url, identity)
        self.identity = identity
        self.version = version
        self.session: OcppSession | None = None
        self.attempted = trio.Event()
        """Set once the first connection attempt has succeeded or failed."""
        self._handlers = handlers
        self._backoff = backoff
        self._limits = limits
        self._connect_timeout_s = connect_timeout_s
        self._on_connect = on_connect
        self._auth = auth
        self._probe = probe
        self._rng = random.Random()

    @property
    def online(self) -> bool:
        """Whether a connection to the CSMS is up now."""
        return self.session is not None and not self.session.closed

    async def run(self) -> None:
        """Connect, serve, reconnect; until cancelled."""
        attempt = 0
        while True:
            try:
                if await self._connection():
                    attempt = 0
            except* ConnectionRejected as group:  # raised in the handshake's nursery
                status = _first(group).status_code
                LOG.warning("%s: the CSMS rejected the connection: HTTP %d", self.identity, status)
            except* (
                OSError,
                HandshakeError,
                ConnectionClosed,
                trio.BrokenResourceError,
                trio.TooSlowError,
            ) as group:
                LOG.info("%s: CSMS unreachable: %r", self.identity, _first(group))
            except* CredentialError as group:
                LOG.warning("%s: not connecting to the CSMS: %s", self.identity, _first(group))
            finally:
                self.session = None
                self.attempted.set()
            delay = self._backoff.delay(attempt, self._rng)
            if self._probe is None:
                await trio.sleep(delay)
            else:
                await self._probe.wait(delay, self._rng)
            attempt += 1

    async def _open_stream(self) -> trio.abc.Stream:
        parts = urlsplit(self.url)
        secure = parts.scheme == "wss"
        host, port = parts.hostname or "", parts.port or (443 if secure else 80)
        if secure:
            context = self._auth.ssl_context(self.identity)
            stream = await trio.open_ssl_over_tcp_stream(
                host, port, ssl_context=context, https_compatible=True
            )
            try:
                await stream.do_handshake()  # now, so that a refused certificate says so
            except BaseException as exc:  # cancelled or timed out too: the socket is closed
                await trio.aclose_forcefully(stream)
                if isinstance(exc, trio.BrokenResourceError) and isinstance(
                    exc.__cause__, ssl.SSLError
                ):
                    raise exc.__cause__ from None
                raise
            return stream
        return await trio.open_tcp_stream(host, port)

    async def _connection(self) -> bool:
        """One connection from handshake to loss; True if it was established.

        The TCP stream is ours (not `open_websocket_url`'s) so that it is closed
        on every path, also when the CSMS goes away during the handshake.
        """
        wanted = subprotocol(self.version)
        parts = urlsplit(self.url)
        headers = self._auth.headers(self.identity)
        with trio.fail_after(self._connect_timeout_s):
            stream = await self._open_stream()
        try:
            async with trio.open_nursery() as nursery:
                with trio.fail_after(self._connect_timeout_s):
                    ws = await wrap_client_stream(
                        nursery,
                        stream,  # type: ignore[arg-type]
                        parts.netloc,
                        parts.path or "/",
                        subprotocols=[wanted],
                        extra_headers=headers,
                        message_queue_size=4,
                    )
                if ws.subprotocol != wanted:
                    LOG.warning("%s: the CSMS did not accept %s", self.identity, wanted)
                    nursery.cancel_scope.cancel()
                    return False
                session = OcppSession(
                    ws, self.version, self._handlers, identity=self.identity, limits=self._limits
                )
                await nursery.start(session.run)
                self.session = session
                self.attempted.set()
                LOG.info("%s: connected to the CSMS", self.identity)
                if self._probe is not None:
                    self._probe.connected()
                if self._on_connect is not None:
                    nursery.start_soon(self._on_connect, session)
                await session.wait_closed()
                nursery.cancel_scope.cancel()
            LOG.info("%s: connection to the CSMS lost", self.identity)
            return True
        finally:
            await trio.aclose_forcefully(stream)
