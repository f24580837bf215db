"""Waiting for a gateway under measurement to have every OCPP station of its site connected."""

from __future__ import annotations

import trio

from hubgate.runtime.gateway import Gateway


async def ready(gateway: Gateway, timeout_s: float) -> None:
    """Until every OCPP station is connected (`trio.TooSlowError` after `timeout_s`)."""
    loop = gateway.loop
    with trio.fail_after(timeout_s):
        while not all(s.session is not None for s in gateway.registry):
            await loop.cycle_ready.wait()
