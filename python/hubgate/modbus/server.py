"""hubgate's Modbus TCP server for site controllers (PLC, SCADA, grid-operator box).

    port = await nursery.start(serve_modbus, site.modbus_server, site, hub, limits)

Reads show the latest site snapshot and the limits in force; writes set site
and connector limits as leases that lapse after `lease_s`, and are accepted
only from `allow_writes_from`. The register map is `server_map` (documented in
docs/modbus-server.md). A misbehaving client only loses its own connection.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
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
from hubgate.control.limits import LimitBook
from hubgate.modbus.errors import ExceptionCode
from hubgate.modbus.server_map import Table
from hubgate.modbus.server_registers import Refused, SiteLayout, SiteRegisters
from hubgate.state import StateHub

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
    handler: ModbusRequestHandler, allowlist: tuple[Network, ...], stream: trio.SocketStream
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
        SiteLayout.from_site(site), hub, limits, lease_s=config.lease_s, clock=clock
    )
    handler = ModbusRequestHandler(registers, config.unit)
    allowlist = write_allowlist(config.allow_writes_from)
    listeners = await trio.open_tcp_listeners(config.port, host=config.host)
    async with trio.open_nursery() as nursery:
        await nursery.start(
            trio.serve_listeners, partial(_serve_connection, handler, allowlist), listeners
        )
        task_status.started(listeners[0].socket.getsockname()[1])
