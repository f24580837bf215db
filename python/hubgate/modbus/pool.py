"""Every Modbus link of a site, opened once: devices that share an address or a bus share its master.

    async with open_modbus_pool() as pool:
        meter = pool.device(site.meters[0].modbus)
        values = await meter.read_plan(plan)

A TCP address (host:port) gets one `TcpMaster`, an RTU-over-TCP gateway one
`RtuMaster`, a serial device one `RtuMaster`; each unit id behind it is a
`ModbusDevice` with its own statistics.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from hubgate.backoff import Backoff
from hubgate.config.model import ModbusEndpoint, SerialLine
from hubgate.modbus.master import Master, ModbusDevice
from hubgate.modbus.reconnect import DEFAULT_BACKOFF
from hubgate.modbus.rtu_master import RtuMaster, serial_rtu_master, tcp_rtu_master
from hubgate.modbus.tcp_master import TcpMaster


class ModbusPool:
    """The masters of a site, keyed by link."""

    def __init__(
        self,
        *,
        timeout_s: float = 1.0,
        retries: int = 1,
        backoff: Backoff = DEFAULT_BACKOFF,
    ) -> None:
        self._timeout_s = timeout_s
        self._retries = retries
        self._backoff = backoff
        self._masters: dict[tuple[str, str, int], Master] = {}
        self._lines: dict[str, SerialLine] = {}

    @property
    def masters(self) -> list[Master]:
        """Every master opened so far."""
        return list(self._masters.values())

    def dial_again(self) -> None:
        """Every master's next connection attempt at once (`Master.dial_again`)."""
        for master in self._masters.values():
            master.dial_again()

    def device(
        self, endpoint: ModbusEndpoint, *, max_in_flight: int = 1, delay_s: float = 0.0
    ) -> ModbusDevice:
        """The device at `endpoint`, on the master its link shares; `max_in_flight` requests
        of a read plan at once when it is on a TCP link, its link quiet for `delay_s` before
        each request to it (see `ModbusDevice`)."""
        key = self._key(endpoint)
        if key not in self._masters:
            self._masters[key] = self._open(endpoint)
        return ModbusDevice(self._masters[key], endpoint.unit, max_in_flight, delay_s)

    def _key(self, endpoint: ModbusEndpoint) -> tuple[str, str, int]:
        if endpoint.serial is not None:
            line = endpoint.serial
            if self._lines.setdefault(line.device, line) != line:
                raise ValueError(
                    f"serial line {line.device} is configured twice with different settings"
                )
            return ("serial", line.device, 0)
        assert endpoint.host is not None
        return ("rtu-over-tcp" if endpoint.rtu_over_tcp else "tcp", endpoint.host, endpoint.port)

    def _open(self, endpoint: ModbusEndpoint) -> Master:
        timeout_s, retries, backoff = self._timeout_s, self._retries, self._backoff
        if endpoint.serial is not None:
            return serial_rtu_master(
                endpoint.serial, timeout_s=timeout_s, retries=retries, backoff=backoff
            )
        assert endpoint.host is not None
        if endpoint.rtu_over_tcp:
            return tcp_rtu_master(
                endpoint.host, endpoint.port, timeout_s=timeout_s, retries=retries, backoff=backoff
            )
        return TcpMaster(
            endpoint.host,
            endpoint.port,
            timeout_s=timeout_s,
            retries=retries,
            backoff=backoff,
        )

    async def aclose(self) -> None:
        """Close every connection and serial line."""
        for master in self._masters.values():
            assert isinstance(master, RtuMaster | TcpMaster)
            await master.aclose()


@asynccontextmanager
async def open_modbus_pool(
    *, timeout_s: float = 1.0, retries: int = 1, backoff: Backoff = DEFAULT_BACKOFF
) -> AsyncIterator[ModbusPool]:
    """A `ModbusPool` whose links are closed on exit."""
    pool = ModbusPool(timeout_s=timeout_s, retries=retries, backoff=backoff)
    try:
        yield pool
    finally:
        await pool.aclose()
