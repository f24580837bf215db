"""The `server` fixture: a running OCPP listener (see tests.support.ocpp_listener)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from hubgate.ocpp.server import ListenerLimits
from tests.support.ocpp_listener import Running, start_listener


@pytest.fixture
async def server(nursery: trio.Nursery) -> AsyncIterator[Running]:
    running = await start_listener(nursery, limits=ListenerLimits(ping_interval_s=0.5))
    yield running
    nursery.cancel_scope.cancel()
