"""hubgate's Modbus server alone in a process with few file descriptors.

    python modbus_server_process.py NOFILE MAX_CONNECTIONS

Lowers the soft descriptor limit to NOFILE, serves `ONE_CHARGER` (an 80 A site with one
OCPP charger) on a free loopback port, prints the port on stdout and logs warnings to
stderr until killed.
"""

from __future__ import annotations

import logging
import resource
import sys
from functools import partial

import trio

from hubgate.config.model import SiteConfig
from hubgate.config.services import ModbusServer
from hubgate.control.limits import LimitBook
from hubgate.modbus_api.server import serve_modbus
from hubgate.state import StateHub

ONE_CHARGER = {
    "site": {"name": "descriptor test"},
    "grid": {"phase_current_limit_a": 80},
    "chargers": [
        {
            "id": "cp-1",
            "node": "grid",
            "ocpp": {"identity": "cp-1"},
            "connectors": [{"id": 1, "max_current_a": 32}],
        }
    ],
}


async def main(max_connections: int) -> None:
    config = ModbusServer(host="127.0.0.1", port=0, max_connections=max_connections)
    site = SiteConfig.model_validate(ONE_CHARGER)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(partial(serve_modbus, config, site, StateHub(), LimitBook()))
        print(port, flush=True)


if __name__ == "__main__":
    nofile, cap = int(sys.argv[1]), int(sys.argv[2])
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, hard))
    logging.basicConfig(level=logging.WARNING, format="%(name)s %(message)s")
    trio.run(main, cap)
