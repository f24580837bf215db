"""Benchmark peers, run as their own process so they do not share the client's interpreter.

    python bench/modbus_bench_devices.py pymodbus        # one pymodbus TCP server
    python bench/modbus_bench_devices.py trio 250        # 250 light Trio devices

Each prints its port(s) on one line, then serves until its standard input closes.
The Trio devices are `hubgate bench`'s loopback devices (hubgate's own server codec,
FC3 reads from 100 registers); a pymodbus server per device would take ~250 asyncio
servers' worth of memory and start-up for the same answers.
"""

from __future__ import annotations

import asyncio
import sys

import trio

from hubgate.benchmarking.modbus_io import REGISTERS, answer_reads


async def _trio_devices(count: int) -> None:
    async with trio.open_nursery() as nursery:
        ports = []
        for _ in range(count):
            listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
            ports.append(listeners[0].socket.getsockname()[1])
            nursery.start_soon(trio.serve_listeners, answer_reads, listeners)
        print(" ".join(map(str, ports)), flush=True)
        await trio.to_thread.run_sync(sys.stdin.read)
        nursery.cancel_scope.cancel()


async def _pymodbus_server() -> None:
    from pymodbus.server import ModbusTcpServer
    from pymodbus.simulator import DataType, SimData, SimDevice

    device = SimDevice(id=1, simdata=[SimData(0, values=REGISTERS, datatype=DataType.REGISTERS)])
    server = ModbusTcpServer(device, address=("127.0.0.1", 0))
    await server.serve_forever(background=True)
    print(server.transport.sockets[0].getsockname()[1], flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await server.shutdown()


if __name__ == "__main__":
    if sys.argv[1] == "pymodbus":
        asyncio.run(_pymodbus_server())
    else:
        trio.run(_trio_devices, int(sys.argv[2]))
