"""A test CSMS: the `ocpp` package's server side on a `websockets` server, in its own thread.

It accepts every charge point, answers what they send (and records it), and
lets the test send calls to a connected charge point.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Any

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call_result as result16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call_result as result201


def now_text() -> str:
    """The CSMS's clock as OCPP text."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


_TX_IDS = itertools.count(100)


class _Recording:
    received: list[tuple[str, dict[str, Any]]]

    def record(self, action: str, payload: dict[str, Any]) -> None:
        self.received.append((action, payload))


class Csms16(ChargePoint16, _Recording):
    """What the CSMS side of a 1.6 connection answers."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.received = []

    @on("BootNotification")
    def on_boot(self, **kw: Any) -> Any:
        self.record("BootNotification", kw)
        return result16.BootNotification(current_time=now_text(), interval=300, status="Accepted")

    @on("Heartbeat")
    def on_heartbeat(self, **kw: Any) -> Any:
        self.record("Heartbeat", kw)
        return result16.Heartbeat(current_time=now_text())

    @on("StatusNotification")
    def on_status(self, **kw: Any) -> Any:
        self.record("StatusNotification", kw)
        return result16.StatusNotification()

    @on("Authorize")
    def on_authorize(self, **kw: Any) -> Any:
        self.record("Authorize", kw)
        return result16.Authorize(id_tag_info={"status": "Accepted"})

    @on("StartTransaction")
    def on_start(self, **kw: Any) -> Any:
        self.record("StartTransaction", kw)
        return result16.StartTransaction(
            transaction_id=next(_TX_IDS), id_tag_info={"status": "Accepted"}
        )

    @on("StopTransaction")
    def on_stop(self, **kw: Any) -> Any:
        self.record("StopTransaction", kw)
        return result16.StopTransaction()

    @on("MeterValues")
    def on_meter_values(self, **kw: Any) -> Any:
        self.record("MeterValues", kw)
        return result16.MeterValues()


class Csms201(ChargePoint201, _Recording):
    """What the CSMS side of a 2.0.1 connection answers."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.received = []

    @on("BootNotification")
    def on_boot(self, **kw: Any) -> Any:
        self.record("BootNotification", kw)
        return result201.BootNotification(current_time=now_text(), interval=300, status="Accepted")

    @on("Heartbeat")
    def on_heartbeat(self, **kw: Any) -> Any:
        self.record("Heartbeat", kw)
        return result201.Heartbeat(current_time=now_text())

    @on("StatusNotification")
    def on_status(self, **kw: Any) -> Any:
        self.record("StatusNotification", kw)
        return result201.StatusNotification()

    @on("Authorize")
    def on_authorize(self, **kw: Any) -> Any:
        self.record("Authorize", kw)
        return result201.Authorize(id_token_info={"status": "Accepted"})

    @on("TransactionEvent")
    def on_transaction_event(self, **kw: Any) -> Any:
        self.record("TransactionEvent", kw)
        return result201.TransactionEvent()

    @on("MeterValues")
    def on_meter_values(self, **kw: Any) -> Any:
        self.record("MeterValues", kw)
        return result201.MeterValues()


class Csms:
    """The running test CSMS: its port, the charge points connected, and calls to them."""

    def __init__(self, loop: asyncio.AbstractEventLoop, port: int) -> None:
        self.loop = loop
        self.port = port
        self.url = f"ws://127.0.0.1:{port}"
        self.stations: dict[str, Csms16 | Csms201] = {}
        """The latest connection of each charge point."""
        self.connections: list[str] = []
        """Identities in the order they connected."""

    def received(self, identity: str, action: str) -> list[dict[str, Any]]:
        """Payloads of `action` from the charge point `identity` so far."""
        station = self.stations.get(identity)
        return [p for a, p in list(station.received) if a == action] if station else []

    def call(self, identity: str, payload: Any, timeout: float = 10.0) -> Any:
        """Send a call to a connected charge point; its answer."""
        station = self.stations[identity]
        return asyncio.run_coroutine_threadsafe(station.call(payload), self.loop).result(timeout)


def wait_until(check: Callable[[], object], timeout: float = 10.0, what: str = "") -> None:
    """Poll `check` (wall clock) until it is true; fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.02)


@contextmanager
def running_csms() -> Iterator[Csms]:
    """A test CSMS on a free loopback port, in a thread."""
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def handler(ws: Any) -> None:
        identity = ws.request.path.rstrip("/").split("/")[-1]
        station = (Csms16 if ws.subprotocol == "ocpp1.6" else Csms201)(identity, ws)
        holder["csms"].stations[identity] = station
        holder["csms"].connections.append(identity)
        with suppress(websockets.exceptions.ConnectionClosed):
            await station.start()

    async def main() -> None:
        async with websockets.serve(
            handler, "127.0.0.1", 0, subprotocols=["ocpp1.6", "ocpp2.0.1"]
        ) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            holder["csms"] = Csms(asyncio.get_running_loop(), port)
            holder["stop"] = asyncio.Event()
            ready.set()
            await holder["stop"].wait()

    thread = threading.Thread(target=lambda: asyncio.run(main()), name="test-csms", daemon=True)
    thread.start()
    assert ready.wait(10), "the test CSMS did not start"
    csms: Csms = holder["csms"]
    try:
        yield csms
    finally:
        csms.loop.call_soon_threadsafe(holder["stop"].set)
        thread.join(10)
