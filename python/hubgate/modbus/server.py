"""A Modbus TCP server on Trio: decodes each client's requests and sends what a handler answers.

    access = Access(networks(("10.0.0.0/8",)), readers=None)
    await nursery.start(serve_modbus_tcp, handler, "0.0.0.0", 502, access)

The handler (`RequestHandler`, sans-IO) turns each decoded request into a response
frame, told whether the client may write (its address is among the writers). A client
that may not read is disconnected at once; a misbehaving client only loses its own
connection; an idle one is closed after `idle_timeout_s`, and one over `max_connections`
closes the connection quiet longest (`hubgate.listeners`). The site's register API on
top of it is `hubgate.modbus_api`.
"""

from __future__ import annotations

import ipaddress
import logging
import math
from dataclasses import dataclass
from functools import partial
from typing import Protocol

import trio

from hubgate._core import FrameError, RequestReceived, RequestRejected, TcpServerCodec
from hubgate.listeners import ConnectionGuard, GuardedStream, serve_guarded
from hubgate.log_limits import RateLimitedLog, clip

log = logging.getLogger(__name__)
_quiet = RateLimitedLog(log)

ANY_UNIT = 0xFF
"""The unit id a Modbus TCP client uses for "this server" (also always accepted)."""

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    """The networks (single addresses included) of an allowlist; raise ValueError on a typo."""
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def allowed(peer: str, allowlist: tuple[Network, ...]) -> bool:
    """Whether a client at `peer` is in `allowlist` (IPv4-mapped IPv6 counts as IPv4)."""
    address = ipaddress.ip_address(peer.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in allowlist)


@dataclass(frozen=True)
class Access:
    """Who may write, and who may read (None: anyone)."""

    writers: tuple[Network, ...]
    readers: tuple[Network, ...] | None = None

    def may_write(self, peer: str) -> bool:
        """Whether a client at `peer` may write."""
        return allowed(peer, self.writers)

    def may_read(self, peer: str) -> bool:
        """Whether a client at `peer` may read (writers may)."""
        return self.readers is None or allowed(peer, self.readers) or self.may_write(peer)


class RequestHandler(Protocol):
    """Answers a decoded request (sans-IO)."""

    def answer(
        self, event: RequestReceived | RequestRejected, *, writable: bool, origin: str
    ) -> bytes:
        """The response frame to `event` from a client that may (or may not) write;
        `origin` names the client, e.g. `modbus 10.0.0.7:50412`."""


async def _serve_connection(
    handler: RequestHandler, access: Access, idle_timeout_s: float, stream: GuardedStream
) -> None:
    host, port = stream.socket.getpeername()[:2]
    origin = f"modbus {host}:{port}"
    if not access.may_read(host):
        _quiet.info(host, "modbus server: %s may not read; disconnected", origin)
        return
    writable = access.may_write(host)
    codec = TcpServerCodec()
    try:
        while True:
            data: bytes | bytearray | None = None
            with trio.move_on_after(idle_timeout_s):
                data = await stream.receive_some(4096)
            if data is None:
                log.debug("modbus server: %s idle for %g s; closed", origin, idle_timeout_s)
                return
            if not data:
                return
            codec.receive_data(data)
            while (event := codec.next_event()) is not None:
                await stream.send_all(handler.answer(event, writable=writable, origin=origin))
    except FrameError as exc:
        _quiet.info(host, "modbus server: closed %s: %s", origin, clip(str(exc)))
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        log.debug("modbus server: %s went away", origin)
    except Exception:  # one client's failure must never stop the server
        log.exception("modbus server: dropped %s", origin)


async def serve_modbus_tcp(
    handler: RequestHandler,
    host: str,
    port: int,
    access: Access,
    *,
    max_connections: int = 16,
    idle_timeout_s: float = math.inf,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `handler` on host:port; reports the bound port, runs until cancelled."""
    serve = partial(_serve_connection, handler, access, idle_timeout_s)
    guard = ConnectionGuard("modbus server", max_connections)
    listeners = await trio.open_tcp_listeners(port, host=host)
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_guarded, serve, listeners, guard)
        task_status.started(listeners[0].socket.getsockname()[1])
