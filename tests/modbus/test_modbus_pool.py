"""The pool: devices that share an address or a bus share one master and one connection."""

from __future__ import annotations

import pytest
import trio

from hubgate.config.model import ModbusEndpoint, SerialLine
from hubgate.modbus.pool import open_modbus_pool
from hubgate.modbus.rtu_master import RtuMaster
from hubgate.modbus.tcp_master import TcpMaster
from tests.support.modbus_peers import HOLDING, RunningServer


async def test_units_behind_one_address_share_a_connection(pymodbus_tcp: RunningServer) -> None:
    one = ModbusEndpoint(profile="meter", host="127.0.0.1", port=pymodbus_tcp.port, unit=1)
    two = one.model_copy(update={"unit": 2})
    with trio.fail_after(5):
        async with open_modbus_pool() as pool:
            first, second = pool.device(one), pool.device(two)
            assert first.master is second.master
            assert isinstance(first.master, TcpMaster)
            assert await first.read_registers(0, 2) == HOLDING[:2]
            assert await second.read_registers(0, 2) == [v * 10 for v in HOLDING[:2]]
            assert first.master.connections_opened == 1
            assert (first.stats.ok, second.stats.ok) == (1, 1)
            gateway = pool.device(one.model_copy(update={"rtu_over_tcp": True}))
            assert isinstance(gateway.master, RtuMaster)
            assert len(pool.masters) == 2


async def test_one_serial_line_with_two_settings_is_refused() -> None:
    with trio.fail_after(5):
        async with open_modbus_pool() as pool:
            pool.device(
                ModbusEndpoint(profile="m", serial=SerialLine(device="/dev/ttyX", baud=9600))
            )
            with pytest.raises(ValueError, match="configured twice with different settings"):
                pool.device(
                    ModbusEndpoint(profile="m", serial=SerialLine(device="/dev/ttyX", baud=19200))
                )
