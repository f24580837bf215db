"""A charge point of the `ocpp` package connected to the test listener and booted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from hubgate.ocpp.registry import Station
from hubgate.ocpp.versions import OcppVersion
from tests.support.charge_points import ChargePointThread
from tests.support.ocpp_listener import Running


@asynccontextmanager
async def booted(
    server: Running, identity: str, version: OcppVersion
) -> AsyncIterator[tuple[ChargePointThread, Station]]:
    """`identity` connected with `version` and booted (its BootNotification answered),
    and its station; stopped on the way out."""
    cp = await server.connect(identity, version)
    try:
        if version is OcppVersion.V16:
            boot = call16.BootNotification(charge_point_model="Terra", charge_point_vendor="ABB")
        else:
            station_info = {"model": "Wallbox", "vendor_name": "Acme"}
            boot = call201.BootNotification(charging_station=station_info, reason="PowerUp")
        await trio.to_thread.run_sync(cp.call, boot)
        station = server.registry.get(identity)
        assert station is not None
        yield cp, station
    finally:
        await trio.to_thread.run_sync(cp.stop)
