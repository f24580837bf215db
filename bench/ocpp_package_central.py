"""The peer of the OCPP load benchmark: a central system built the way the `ocpp` package
documents it, a `ChargePoint` per connection on a `websockets` server (asyncio).

It answers what the load's stations send (BootNotification, Heartbeat, StatusNotification,
MeterValues) for any identity, and keeps nothing but what the handlers need. The package
validates every call and answer against its JSON schemas, as hubgate does; validation runs
inline (`ASYNC_VALIDATION = False`), its cheaper setting: the default hands every message to
a thread pool and back, which costs this process more CPU per message.

    python bench/ocpp_package_central.py      # prints its port, serves until killed
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
from datetime import UTC, datetime
from typing import Any

import ocpp.messages
import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call_result

ocpp.messages.ASYNC_VALIDATION = False


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Central(ChargePoint):
    """The CSMS side of one 1.6 charge point."""

    @on("BootNotification")
    def boot_notification(self, **kw: Any) -> Any:
        return call_result.BootNotification(current_time=_now(), interval=60, status="Accepted")

    @on("Heartbeat")
    def heartbeat(self, **kw: Any) -> Any:
        return call_result.Heartbeat(current_time=_now())

    @on("StatusNotification")
    def status_notification(self, **kw: Any) -> Any:
        return call_result.StatusNotification()

    @on("MeterValues")
    def meter_values(self, **kw: Any) -> Any:
        return call_result.MeterValues()


async def _serve(connection: Any) -> None:
    identity = connection.request.path.rsplit("/", 1)[-1]
    with contextlib.suppress(websockets.ConnectionClosed):
        await Central(identity, connection).start()


async def main() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
    async with websockets.serve(_serve, "127.0.0.1", 0, subprotocols=["ocpp1.6"]) as server:
        print(server.sockets[0].getsockname()[1], flush=True)  # type: ignore[index]
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main())
