"""hubgate's Modbus TCP server for site controllers (PLC, SCADA, grid-operator box).

    port = await nursery.start(serve_modbus, site.modbus_server, site, hub, limits)

Reads show the latest site snapshot and the limits in force; writes set site
and connector limits as leases that lapse after `lease_s`, and are accepted
only from `allow_writes_from`; with `allow_reads_from` any other client is
disconnected at once. Limits in force stay within the site file's own (`site_caps`).
The register map is `register_map` (documented in docs/modbus-server.md); the
transport (allowlists, idle timeout, connection cap) is `hubgate.modbus.server`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import trio

from hubgate._core import Request, RequestReceived, RequestRejected, Response, TcpServerCodec
from hubgate.config.model import SiteConfig
from hubgate.config.services import ModbusServer
from hubgate.control.limits import LimitBook, site_caps
from hubgate.modbus.errors import ExceptionCode
from hubgate.modbus.server import ANY_UNIT, Access, networks, serve_modbus_tcp
from hubgate.modbus_api.register_map import Table
from hubgate.modbus_api.registers import Refused, SiteLayout, SiteRegisters
from hubgate.state import StateHub

log = logging.getLogger(__name__)


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
    readers = config.allow_reads_from
    access = Access(
        networks(config.allow_writes_from), None if readers is None else networks(readers)
    )
    await serve_modbus_tcp(
        handler,
        config.host,
        config.port,
        access,
        max_connections=config.max_connections,
        idle_timeout_s=config.idle_timeout_s,
        task_status=task_status,
    )
