"""hubgate's Modbus TCP server for site controllers (PLC, SCADA, grid-operator box).

    port = await nursery.start(serve_modbus, site.modbus_server, site, hub, limits)

Reads show the latest site snapshot and the limits in force; writes set site
and connector limits as leases that lapse after `lease_s`, and are accepted
only from `allow_writes_from`; with `allow_reads_from` any other client is
disconnected at once. The register map is `server_map` (documented in
docs/modbus-server.md). A misbehaving client only loses its own connection; an
idle one is closed after `idle_timeout_s`, and one over `max_connections`
closes the connection quiet longest (`hubgate.listeners`).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import trio

from hubgate._core import (
    FrameError,
    Request,
    RequestReceived,
    RequestRejected,
    Response,
    TcpServerCodec,
)
from hubgate.config.model import ModbusServer, SiteConfig
from hubgate.control.limits import LimitBook, site_caps
from hubgate.listeners import ConnectionGuard, GuardedStream, serve_guarded
from hubgate.log_limits import RateLimitedLog, clip
from hubgate.modbus.errors import ExceptionCode
from hubgate.modbus.server_map import Table
from hubgate.modbus.server_registers import Refused, SiteLayout, SiteRegisters
from hubgate.state import StateHub

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
    readers: tuple[Network, ...] | None

    @classmethod
    def of(cls, config: ModbusServer) -> Access:
        """The allowlists of the server's configuration."""
        readers = config.allow_reads_from
        return cls(
            networks(config.allow_writes_from), None if readers is None else networks(readers)
        )

    def may_write(self, peer: str) -> bool:
        """Whether a client at `peer` may write."""
        return allowed(peer, self.writers)

    def may_read(self, peer: str) -> bool:
        """Whether a client at `peer` may read (writers may)."""
        return self.readers is None or allowed(peer, self.readers) or self.may_write(peer)


class ModbusRequestHandler:
    """Answers decoded requests from one site's registers (sans-IO)."""

    def __init__(self, registers: SiteRegisters, unit: int) -> None:
        self.registers = registers
        self.unit = unit

    def answer(
        self, event: RequestReceived | RequestRejected, *, writable: bool, origin: str
    ) -> bytes:
        """The response frame to `event` from a client that may (or may not) write."""
        if isinstance(event, RequestRejected):
            return TcpServerCodec.encode_exception(
                event.transaction_id, event.unit, event.function_code, event.exception_code
            )
        request = event.request
        try:
            if event.unit not in (self.unit, ANY_UNIT):
                raise Refused(ExceptionCode.GATEWAY_PATH_UNAVAILABLE, f"no unit {event.unit}")
            response = self._respond(request, writable=writable, origin=origin)
        except Refused as refused:
            log.debug("modbus server: %s from %s: %s", request, origin, refused)
            return TcpServerCodec.encode_exception(
                event.transaction_id, event.unit, request.function_code, refused.code
            )
        return TcpServerCodec.encode_response(event.transaction_id, event.unit, response)

    def _respond(self, request: Request, *, writable: bool, origin: str) -> Response:
        match request:
            case Request.ReadHoldingRegisters(address, count):
                return Response.ReadHoldingRegisters(
                    self.registers.read(Table.HOLDING, address, count)
                )
            case Request.ReadInputRegisters(address, count):
                return Response.ReadInputRegisters(self.registers.read(Table.INPUT, address, count))
            case Request.WriteSingleRegister(address, value):
                self._check_writer(writable, origin)
                self.registers.write(address, [value], origin=origin)
                return Response.WriteSingleRegister(address, value)
            case Request.WriteMultipleRegisters(address, values):
                self._check_writer(writable, origin)
                self.registers.write(address, values, origin=origin)
                return Response.WriteMultipleRegisters(address, len(values))
        raise Refused(ExceptionCode.ILLEGAL_FUNCTION, f"function {request.function_code}")

    @staticmethod
    def _check_writer(writable: bool, origin: str) -> None:
        if not writable:
            raise Refused(ExceptionCode.ILLEGAL_FUNCTION, f"{origin} may not write")


async def _serve_connection(
    handler: ModbusRequestHandler, access: Access, idle_timeout_s: float, stream: GuardedStream
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


async def serve_modbus(
    config: ModbusServer,
    site: SiteConfig,
    hub: StateHub,
    limits: LimitBook,
    *,
    clock: Callable[[], float] = trio.current_time,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `site` on `config.host:config.port`; reports the bound port, runs until cancelled."""
    registers = SiteRegisters(
        SiteLayout.from_site(site),
        hub,
        limits,
        lease_s=config.lease_s,
        caps=site_caps(site),
        clock=clock,
    )
    handler = ModbusRequestHandler(registers, config.unit)
    serve = partial(_serve_connection, handler, Access.of(config), config.idle_timeout_s)
    guard = ConnectionGuard("modbus server", config.max_connections)
    listeners = await trio.open_tcp_listeners(config.port, host=config.host)
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_guarded, serve, listeners, guard)
        task_status.started(listeners[0].socket.getsockname()[1])
