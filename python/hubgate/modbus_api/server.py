"""hubgate's Modbus TCP server for site controllers (PLC, SCADA, grid-operator box).

    port = await nursery.start(serve_modbus, site.modbus_server, site, hub, limits)

Reads show the latest site snapshot and the limits in force; writes set site
and connector limits as leases that lapse after `lease_s` and sessions' energy needs
and departures (handed to the control loop's `Commands`), and are accepted
only from `allow_writes_from`; with `allow_reads_from` any other client is
disconnected at once. Limits in force stay within the site file's own (`site_caps`).
The register map is `register_map` (documented in docs/modbus-server.md); the
transport (allowlists, idle timeout, connection cap) is `hubgate.modbus.server`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

import trio

from hubgate._core import Request, RequestReceived, RequestRejected, Response, TcpServerCodec
from hubgate.config.model import SiteConfig
from hubgate.config.services import ModbusServer
from hubgate.control.commands import CommandRejectedError, Commands
from hubgate.control.limits import LimitBook, site_caps
from hubgate.modbus.errors import ExceptionCode
from hubgate.modbus.server import ANY_UNIT, Access, networks, serve_modbus_tcp
from hubgate.modbus_api.register_map import NeedView, Table
from hubgate.modbus_api.registers import Refused, SiteLayout, SiteRegisters
from hubgate.state import StateHub

log = logging.getLogger(__name__)

NEEDS_QUEUED = 1000
"""Session needs written and not yet taken by the control loop; a write beyond is answered
exception 6 (Server Device Busy)."""


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
    commands: Commands | None = None,
    clock: Callable[[], float] = trio.current_time,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `site` on `config.host:config.port`; reports the bound port, runs until cancelled.
    Session needs written go to `commands` (None: their registers refuse writes)."""
    async with trio.open_nursery() as nursery:
        needs = None
        if commands is not None:
            send, receive = trio.open_memory_channel[tuple[str, NeedView]](NEEDS_QUEUED)
            nursery.start_soon(_pass_needs, receive, commands)
            needs = partial(_queue_need, send)
        registers = SiteRegisters(
            SiteLayout.from_site(site),
            hub,
            limits,
            lease_s=config.lease_s,
            caps=site_caps(site),
            clock=clock,
            needs=needs,
        )
        await _serve(config, registers, task_status)


def _queue_need(
    send: trio.MemorySendChannel[tuple[str, NeedView]], connector: str, need: NeedView
) -> None:
    try:
        send.send_nowait((connector, need))
    except trio.WouldBlock:
        raise Refused(ExceptionCode.SERVER_DEVICE_BUSY, "session needs queued: try again") from None


async def _pass_needs(
    receive: trio.MemoryReceiveChannel[tuple[str, NeedView]], commands: Commands
) -> None:
    """Hand the session needs written through the server to the control loop, in order."""
    async for connector, need in receive:
        departure = None if need.departure is None else datetime.fromtimestamp(need.departure, UTC)
        try:
            await commands.set_session(
                connector, need.energy_kwh, departure, max_current_a=need.ev_max_a
            )
        except CommandRejectedError as exc:
            log.warning("modbus server: session need for %s refused: %s", connector, exc)


async def _serve(
    config: ModbusServer, registers: SiteRegisters, task_status: trio.TaskStatus[int]
) -> None:
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
