"""A Modbus TCP server on Trio: decodes each client's requests and sends what a handler answers.

    await nursery.start(serve_modbus_tcp, handler, "0.0.0.0", 502, write_allowlist(["10.0.0.0/8"]))

The handler (`RequestHandler`, sans-IO) turns each decoded request into a response
frame, told whether the client may write (its address is in the allowlist). A
misbehaving client only loses its own connection. The site's register API on top of
it is `hubgate.modbus_api`.
"""

from __future__ import annotations

import ipaddress
import logging
from functools import partial
from typing import Protocol

import trio

from hubgate._core import FrameError, RequestReceived, RequestRejected, TcpServerCodec

log = logging.getLogger(__name__)

ANY_UNIT = 0xFF
"""The unit id a Modbus TCP client uses for "this server" (also always accepted)."""

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def write_allowlist(entries: tuple[str, ...]) -> tuple[Network, ...]:
    """The networks (single addresses included) that may write; raise ValueError on a typo."""
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def may_write(peer: str, allowlist: tuple[Network, ...]) -> bool:
    """Whether a client at `peer` may write (IPv4-mapped IPv6 counts as IPv4)."""
    address = ipaddress.ip_address(peer.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in allowlist)


class RequestHandler(Protocol):
    """Answers a decoded request (sans-IO)."""

    def answer(
        self, event: RequestReceived | RequestRejected, *, writable: bool, origin: str
    ) -> bytes:
        """The response frame to `event` from a client that may (or may not) write;
        `origin` names the client, e.g. `modbus 10.0.0.7:50412`."""


async def _serve_connection(
    handler: RequestHandler, allowlist: tuple[Network, ...], stream: trio.SocketStream
) -> None:
    host, port = stream.socket.getpeername()[:2]
    origin = f"modbus {host}:{port}"
    writable = may_write(host, allowlist)
    codec = TcpServerCodec()
    try:
        async with stream:
            while data := await stream.receive_some(4096):
                codec.receive_data(data)
                while (event := codec.next_event()) is not None:
                    await stream.send_all(handler.answer(event, writable=writable, origin=origin))
    except FrameError as exc:
        log.info("modbus server: closed %s: %s", origin, exc)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        log.debug("modbus server: %s went away", origin)
    except Exception:  # one client's failure must never stop the server
        log.exception("modbus server: dropped %s", origin)


async def serve_modbus_tcp(
    handler: RequestHandler,
    host: str,
    port: int,
    allowlist: tuple[Network, ...] = (),
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `handler` on host:port; reports the bound port, runs until cancelled.
    Clients in `allowlist` may write."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    async with trio.open_nursery() as nursery:
        await nursery.start(
            trio.serve_listeners, partial(_serve_connection, handler, allowlist), listeners
        )
        task_status.started(listeners[0].socket.getsockname()[1])
