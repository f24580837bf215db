"""The simulator's one pymodbus adapter: simulated devices served over Modbus TCP.

A box is a site entry (a charger with one simulated device per connector on
consecutive unit ids, a meter, PV, battery or grid-operator module). It runs on
the caller's asyncio loop and can drop off the network (`go_online`: refused, its
port held, then served again on the same port) or die silently (`silence`: requests
are held unanswered).
`serve` runs one simulated device on its own in a background thread, over TCP or
RTU on a pty (tests and benchmarks that talk to a single device).
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from pymodbus import FramerType
from pymodbus.constants import ExcCodes
from pymodbus.pdu.device import ModbusControlBlock, ModbusDeviceIdentification
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler
from pymodbus.simulator import SimDevice
from pymodbus.simulator.simdevice import SimAction

from hubgate.sim.register_feed import FedDevice
from hubgate.sim.simulated_device import SimulatedDevice
from hubgate.sim.writers import PEER, OnWrite

WRITES = frozenset({5, 6, 15, 16, 22, 23})
"""Modbus function codes that write."""


class _PeerHandler(ServerRequestHandler):
    """pymodbus's connection handler, telling each request's action its connection."""

    async def handle_request(self) -> None:
        transport = self.transport
        if transport is not None:
            ours, theirs = (
                transport.get_extra_info("sockname"),
                transport.get_extra_info("peername"),
            )
            if ours and theirs:
                PEER.set(((ours[0], ours[1]), (theirs[0], theirs[1])))
        await super().handle_request()  # type: ignore[no-untyped-call]


class _Server(ModbusTcpServer):
    """A pymodbus TCP server whose request actions know their connection (`PEER`)."""

    def callback_new_connection(self) -> ServerRequestHandler:
        return _PeerHandler(self, self.trace_packet, self.trace_pdu, self.trace_connect)  # type: ignore[no-untyped-call]


Trace = Callable[[bool, bytes], bytes]
"""pymodbus's packet hook: (sending, packet) -> the packet to send or take (b"": none)."""


async def start_server(
    devices: list[SimDevice], host: str, port: int, trace: Trace | None = None
) -> ModbusTcpServer:
    """A pymodbus TCP server for `devices`, listening on host:port (0: a free one);
    `OSError` when it cannot bind."""
    server = _Server(devices, address=(host, port), trace_packet=trace)
    try:
        await server.serve_forever(background=True)
    except RuntimeError as error:  # pymodbus's word for a failed bind
        raise OSError(f"cannot listen on {host}:{port}") from error
    return server


def hold_port(host: str, port: int) -> socket.socket:
    """A socket bound to host:port that does not listen: a connection to the port is
    refused, and no other socket is given it meanwhile (a client's ephemeral port or
    another server's port 0). A server binds it beside (SO_REUSEADDR on both); then close
    this one."""
    family, kind, proto, _name, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def bound_port(server: ModbusTcpServer) -> int:
    """The port a started server listens on."""
    assert server.transport is not None
    port: int = server.transport.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    return port


@dataclass
class ModbusBox:
    """A site entry served over Modbus TCP."""

    id: str
    kind: str
    """charger, meter, pv, battery or grid-operator."""
    profile: str
    devices: list[FedDevice]
    host: str
    port: int
    """The port asked for (0: any free one) until started, then the one bound."""
    serial: str | None = None
    """The serial line the site file gives (the box is served over TCP all the same)."""
    online: bool = True
    """Whether the box should be on the network (`go_online` starts or stops it)."""
    on_write: OnWrite | None = None
    """Told of every write request (`hubgate.sim.writers`)."""
    _server: ModbusTcpServer | None = None
    _answering: asyncio.Event | None = None
    _held: socket.socket | None = None
    """The port, bound but not listening, while the box is off the network."""

    @property
    def units(self) -> list[int]:
        """The unit ids the box answers on, devices first (a charger's sockets in order)."""
        units = [fed.device.unit for fed in self.devices]
        for fed in self.devices:
            units += [u for u, _ in fed.device.memory if u not in units]
        return units

    @property
    def linked(self) -> bool:
        """Whether a master holds a connection to the box (its devices' clocks then run on
        the wall clock: `sim.device_clock`)."""
        server = self._server
        return server is not None and bool(server.active_connections)

    def _sim_devices(self) -> list[SimDevice]:
        seen: set[int] = set()
        found: list[SimDevice] = []
        for fed in self.devices:
            for sim_device in fed.device.sim_devices():
                if sim_device.id in seen:  # a station unit shared by the sockets
                    continue
                seen.add(sim_device.id)
                found.append(dataclasses.replace(sim_device, action=self._gate(sim_device)))
        return found

    def _gate(self, sim_device: SimDevice) -> SimAction:
        """The device's action, held while the box is silent."""
        action = sim_device.action
        assert action is not None

        async def gated(
            fc: int,
            start: int,
            address: int,
            count: int,
            registers: list[int],
            values: list[int] | list[bool] | None,
        ) -> ExcCodes | None:
            if self._answering is not None:
                await self._answering.wait()
            if fc in WRITES and values and self.on_write is not None:
                what = {"unit": sim_device.id, "address": address, "values": list(values or [])}
                self.on_write(self.id, what, PEER.get())
            return await action(fc, start, address, count, registers, values)

        return gated

    async def go_online(self, online: bool) -> None:
        """Come back on the network, or drop off it: connections are refused meanwhile, and
        the port stays the box's, as a device's address stays its own while it reboots."""
        self.online = online
        if online:
            await self.start()
        elif self._server is not None:
            await self.stop()
            self._held = hold_port(self.host, self.port)

    async def start(self) -> None:
        """Listen (again); the first start fixes the port."""
        if self._server is not None:
            return
        if self._answering is None:
            self._answering = asyncio.Event()
            self._answering.set()
        try:
            server = await start_server(self._sim_devices(), self.host, self.port)
        except OSError as error:
            raise OSError(f"{self.kind} '{self.id}' {error}") from error.__cause__
        self.port = bound_port(server)
        self._server = server
        self._release()

    async def stop(self) -> None:
        """Close the listener and every connection, and let go of the port."""
        self._release()
        server, self._server = self._server, None
        if server is not None:
            await server.shutdown()  # type: ignore[no-untyped-call]

    def _release(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            held.close()

    def silence(self, silent: bool) -> None:
        """Hold every request unanswered (a dead device), or answer again."""
        if self._answering is None:
            return
        if silent:
            self._answering.clear()
        else:
            self._answering.set()

    def listing(self) -> dict[str, object]:
        """Where the box listens, for the listing file."""
        return {
            "id": self.id,
            "kind": self.kind,
            "profile": self.profile,
            "host": self.host,
            "port": self.port,
            "units": self.units,
            "serial": self.serial,
        }


@contextmanager
def serve(
    device: SimulatedDevice,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    serial_port: str | None = None,
    baud: int = 9600,
    device_id: Mapping[str, str] | None = None,
) -> Iterator[int]:
    """Serve `device` from a background thread: over Modbus TCP (yields the port), or over
    RTU on `serial_port` (a pty end; yields 0). `device_id` are FC43/14 objects by pymodbus
    name (VendorName, ProductCode, MajorMinorRevision...) the server answers with (pymodbus
    holds them per process: one identified device at a time). Like a device on a bus, it
    answers only its own unit ids."""
    identity = ModbusControlBlock().Identity  # type: ignore[no-untyped-call]  # one per process: reset
    for object_id in range(0x07):
        identity[object_id] = ""
    if device_id is not None:
        identity.update(ModbusDeviceIdentification(info_name=dict(device_id)))  # type: ignore[no-untyped-call]
    units = {unit for unit, _ in device.memory}
    unit_byte = 0 if serial_port is not None else 6  # RTU: the first byte; TCP: after the MBAP

    def own_units_only(sending: bool, packet: bytes) -> bytes:
        """pymodbus answers unknown unit ids (with its device 0 or an error): say nothing."""
        if sending and len(packet) > unit_byte and packet[unit_byte] not in units:
            return b""
        return packet

    started = threading.Event()
    state: dict[str, object] = {}

    async def main() -> None:
        server: ModbusTcpServer | ModbusSerialServer
        if serial_port is None:
            server = await start_server(device.sim_devices(), host, port, own_units_only)
            state["port"] = bound_port(server)
        else:
            server = ModbusSerialServer(
                device.sim_devices(),
                port=serial_port,
                baudrate=baud,
                parity="N",
                framer=FramerType.RTU,
                trace_packet=own_units_only,
            )
            await server.serve_forever(background=True)
            state["port"] = 0
        state["loop"] = asyncio.get_running_loop()
        state["server"] = server
        started.set()
        await server.serving

    def run() -> None:
        try:
            asyncio.run(main())
        finally:
            started.set()

    thread = threading.Thread(target=run, name=f"sim-{device.profile.name}", daemon=True)
    thread.start()
    if not started.wait(10) or "port" not in state:
        raise RuntimeError(f"simulated {device.profile.name} did not start")
    try:
        yield int(str(state["port"]))
    finally:
        loop = state["loop"]
        server = state["server"]
        assert isinstance(loop, asyncio.AbstractEventLoop)
        assert isinstance(server, ModbusTcpServer | ModbusSerialServer)
        asyncio.run_coroutine_threadsafe(server.shutdown(), loop).result(5)  # type: ignore[no-untyped-call]
        thread.join(5)
