"""One Modbus TCP endpoint of the virtual site: a pymodbus server for one box's devices.

A box is a site entry (a charger with one simulated device per connector on
consecutive unit ids, a meter, PV, battery or grid-operator module). It runs on
the caller's asyncio loop and can drop off the network (`stop`, later `start` on
the same port) or die silently (`silence`: requests are held unanswered).
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler
from pymodbus.simulator import SimDevice
from pymodbus.simulator.simdevice import SimAction

from hubgate.sim.register_feed import FedDevice
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
    def callback_new_connection(self) -> ServerRequestHandler:
        return _PeerHandler(self, self.trace_packet, self.trace_pdu, self.trace_connect)  # type: ignore[no-untyped-call]


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
        """Come back on the network, or drop off it."""
        self.online = online
        await (self.start() if online else self.stop())

    async def start(self) -> None:
        """Listen (again); the first start fixes the port."""
        if self._server is not None:
            return
        if self._answering is None:
            self._answering = asyncio.Event()
            self._answering.set()
        server = _Server(self._sim_devices(), address=(self.host, self.port))
        try:
            await server.serve_forever(background=True)
        except RuntimeError as error:  # pymodbus's word for a failed bind
            raise OSError(
                f"{self.kind} '{self.id}' cannot listen on {self.host}:{self.port}"
            ) from error
        assert server.transport is not None
        self.port = server.transport.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self._server = server

    async def stop(self) -> None:
        """Close the listener and every connection (the box dropped off the network)."""
        server, self._server = self._server, None
        if server is not None:
            await server.shutdown()  # type: ignore[no-untyped-call]

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
