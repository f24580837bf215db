"""nats-py on Trio: the client on its own asyncio loop in a thread, called from Trio.

nats-py is asyncio-only. `open_nats_link` starts a thread with an asyncio loop that
connects (and keeps reconnecting) to the cluster; `NatsLink.run(fn)` runs `fn(client)`
on that loop and returns its result to the calling Trio task, woken through the Trio
token (no worker thread is held while it waits). `NatsLink.run_blocking` does the same
from a worker thread (the store's). A Trio task cancelled while it waits cancels the
coroutine on the asyncio side.

    async with open_nats_link(cluster) as link:
        revision = await link.run(lambda nc: put(nc, ...), within_s=1.0)
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import ssl
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager, suppress
from typing import Any, TypeVar

import trio
from nats.aio.client import Client

from hubgate._core import HubgateError
from hubgate.config.services import Cluster

log = logging.getLogger(__name__)

T = TypeVar("T")

NatsCall = Callable[[Client], Coroutine[Any, Any, T]]


class ClusterUnavailableError(HubgateError):
    """The NATS cluster could not be reached (not connected, or no answer in time)."""


class NatsLink:
    """A connection to the NATS cluster, used from Trio; make one with `open_nats_link`."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, client: Client, token: trio.lowlevel.TrioToken
    ) -> None:
        self._loop = loop
        self.client = client
        """The nats-py client: touch it only in coroutines given to `run`."""
        self._token = token
        self._first_connect = trio.Event()

    async def wait_connected(self) -> None:
        """Return once the client has connected for the first time."""
        await self._first_connect.wait()

    def _connected(self) -> None:
        """Called on the asyncio side after the first connection."""
        with suppress(trio.RunFinishedError):
            self._token.run_sync_soon(self._first_connect.set)

    @property
    def connected(self) -> bool:
        """Whether the client is connected to a server now."""
        return bool(self.client.is_connected)

    def _submit(self, fn: NatsCall[T], within_s: float | None) -> concurrent.futures.Future[T]:
        async def call() -> T:
            if not self.client.is_connected:
                raise ClusterUnavailableError("not connected to any NATS server")
            if within_s is None:
                return await fn(self.client)
            try:
                return await asyncio.wait_for(fn(self.client), within_s)
            except TimeoutError:
                raise ClusterUnavailableError(
                    f"no answer from NATS within {within_s:g} s"
                ) from None

        return asyncio.run_coroutine_threadsafe(call(), self._loop)

    async def run(self, fn: NatsCall[T], *, within_s: float | None = None) -> T:
        """`fn(client)` on the asyncio loop; its result (or exception) here.

        Raises `ClusterUnavailableError` while disconnected or after `within_s` seconds."""
        future = self._submit(fn, within_s)
        done = trio.Event()
        token = trio.lowlevel.current_trio_token()

        def wake(_: object) -> None:
            with suppress(trio.RunFinishedError):
                token.run_sync_soon(done.set)

        future.add_done_callback(wake)
        try:
            await done.wait()
        except trio.Cancelled:
            future.cancel()
            raise
        return future.result()

    def run_blocking(self, fn: NatsCall[T], *, within_s: float) -> T:
        """`fn(client)` on the asyncio loop, waited for by this (worker) thread."""
        future = self._submit(fn, within_s)
        try:
            return future.result(within_s + 1.0)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise ClusterUnavailableError(f"no answer from NATS within {within_s:g} s") from None


def connect_options(cluster: Cluster) -> dict[str, Any]:
    """nats-py's connect options for `cluster` (credentials read now, never logged)."""
    options: dict[str, Any] = {
        "servers": list(cluster.servers),
        "name": f"hubgate-{cluster.site_id}-{cluster.node}",
        "connect_timeout": 2,
        "reconnect_time_wait": 0.25,
        "max_reconnect_attempts": -1,
        "ping_interval": 1,
        "max_outstanding_pings": 2,
        "allow_reconnect": True,
    }
    if cluster.user is not None:
        options["user"] = cluster.user
    if cluster.password_env is not None:
        password = os.environ.get(cluster.password_env)
        if not password:
            raise ClusterUnavailableError(
                f"[cluster] password_env: the variable {cluster.password_env} is not set"
            )
        options["password"] = password
    if cluster.creds_file is not None:
        options["user_credentials"] = cluster.creds_file
    if cluster.tls_ca is not None:
        options["tls"] = ssl.create_default_context(cafile=cluster.tls_ca)
    return options


@asynccontextmanager
async def open_nats_link(cluster: Cluster, *, retry_s: float = 0.5) -> AsyncIterator[NatsLink]:
    """The link, yielded at once: the thread connects in the background and keeps
    reconnecting (`NatsLink.connected`); closed when the block is left."""
    options = connect_options(cluster)
    started: concurrent.futures.Future[tuple[NatsLink, asyncio.Event]] = concurrent.futures.Future()

    token = trio.lowlevel.current_trio_token()

    async def main() -> None:
        client = Client()
        stop = asyncio.Event()
        link = NatsLink(asyncio.get_running_loop(), client, token)
        started.set_result((link, stop))
        closer = asyncio.ensure_future(stop.wait())

        async def disconnected() -> None:
            if not stop.is_set():
                log.warning("NATS: disconnected from the cluster; reconnecting")

        async def reconnected() -> None:
            url = client.connected_url
            log.warning("NATS: reconnected to %s", "?" if url is None else url.netloc)

        while not stop.is_set():
            try:
                await client.connect(
                    **options,
                    error_cb=_error,
                    disconnected_cb=disconnected,
                    reconnected_cb=reconnected,
                )
                link._connected()
                break
            except Exception as exc:  # the cluster is not there yet: try again
                log.warning("NATS: cannot connect to %s: %s", ", ".join(cluster.servers), exc)
                await asyncio.wait([closer], timeout=retry_s)
        await closer
        if client.is_connected or client.is_reconnecting:
            try:
                await asyncio.wait_for(client.close(), 2.0)
            except Exception as exc:  # closing is best effort
                log.debug("NATS close: %s", exc)

    thread = threading.Thread(target=lambda: asyncio.run(main()), name="nats-link", daemon=True)
    thread.start()
    link, stop = await trio.to_thread.run_sync(started.result)
    try:
        yield link
    finally:
        link._loop.call_soon_threadsafe(stop.set)
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(thread.join, 5.0)


async def _error(error: Exception) -> None:
    """nats-py's errors on the connection (a refused dial while reconnecting, a server
    gone): the disconnection and reconnection are logged as warnings already."""
    log.info("NATS: %s", error or type(error).__name__)
