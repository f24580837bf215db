"""The listener under test: 127.0.0.1, port 0, a few allowed charge points, and helpers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio

from hubgate.config.services import OcppServer
from hubgate.ocpp.registry import Admission, StationRegistry
from hubgate.ocpp.server import OcppListener
from hubgate.ocpp.versions import OcppVersion
from tests.support.charge_points import ChargePointThread, Cp16, Cp21, Cp201

V16, V201, V21 = OcppVersion.V16, OcppVersion.V201, OcppVersion.V21
PASSWORD = "0123456789abcdef0123"

ADMISSIONS = [
    Admission("CP16", "charger-16", (V16,), PASSWORD),
    Admission("CP201", "charger-201", (V201, V16), PASSWORD),
    Admission("CP21", "charger-21", (V21, V201), PASSWORD),
    *(Admission(f"CP16-{n}", f"c16-{n}", (V16,), PASSWORD) for n in range(4)),
    Admission("CP16-2C", "two-connectors", (V16,), PASSWORD, connectors=(1, 2)),
]

FACTORIES: dict[OcppVersion, Callable[[str, Any], Any]] = {V16: Cp16, V201: Cp201, V21: Cp21}


@dataclass
class Running:
    """A listener under test."""

    listener: OcppListener
    registry: StationRegistry
    port: int
    scheme: str = "ws"

    def url(self, identity: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/ocpp/{identity}"

    async def connect(
        self, identity: str, version: OcppVersion, **kwargs: Any
    ) -> ChargePointThread:
        """A connected charge point of `version` (closed by the caller or at test end)."""
        peer = ChargePointThread(
            FACTORIES[version], self.url(identity), subprotocols=[f"ocpp{version}"], **kwargs
        )
        return await trio.to_thread.run_sync(peer.start)

    async def session_of(self, identity: str, *, replacing: Any = None) -> Any:
        """The server-side session of `identity` once registered (and not `replacing`)."""
        with trio.fail_after(5):
            while True:
                station = self.registry.get(identity)
                if station is not None and station.session not in (None, replacing):
                    return station.session
                await trio.sleep(0.005)


async def start_listener(
    nursery: trio.Nursery, config: OcppServer | None = None, **kwargs: Any
) -> Running:
    registry = StationRegistry(ADMISSIONS)
    listener = OcppListener(config or OcppServer(port=0), registry, **kwargs)
    port = await nursery.start(listener.serve)
    scheme = "wss" if listener.config.security_profile >= 2 else "ws"
    return Running(listener, registry, port, scheme)
