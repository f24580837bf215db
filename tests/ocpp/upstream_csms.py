"""A test CSMS: the `ocpp` package's asyncio ChargePoint on the server side of a
`websockets` server, in its own thread with its own event loop. It can be stopped
and started again on the same port, and logs every frame it receives."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from typing import Any

import ocpp.messages
import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call_result as result16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call_result as result201
from ocpp_peers import now_text

SUBPROTOCOLS = ["ocpp1.6", "ocpp2.0.1"]

ocpp.messages.ASYNC_VALIDATION = False
"""Validate inline rather than in the loop's thread pool: a thread hop per message would
make the test peers, not hubgate, the bottleneck of the replay tests."""


class _Central:
    """What both versions share: a frame log, transaction numbering, accepted tokens."""

    csms: CsmsThread

    async def route_message(self, raw: str | bytes) -> None:
        frame = json.loads(raw)
        self.csms.log(self.id, frame)  # type: ignore[attr-defined]
        self._unique_id = frame[1]
        await super().route_message(raw)  # type: ignore[misc]

    def _status(self, token: str) -> str:
        return "Accepted" if token in self.csms.accepted else "Invalid"


class Central16(_Central, ChargePoint16):
    """The CSMS side of a 1.6 charge point."""

    @on("BootNotification")
    def boot(self, **kw: Any) -> Any:
        return result16.BootNotification(current_time=now_text(), interval=123, status="Accepted")

    @on("Heartbeat")
    def heartbeat(self, **kw: Any) -> Any:
        return result16.Heartbeat(current_time=now_text())

    @on("StatusNotification")
    def status(self, **kw: Any) -> Any:
        return result16.StatusNotification()

    @on("Authorize")
    def authorize(self, id_tag: str) -> Any:
        return result16.Authorize(id_tag_info={"status": self._status(id_tag)})

    @on("StartTransaction")
    def start_transaction(self, id_tag: str, **kw: Any) -> Any:
        transaction_id = self.csms.transaction_id(self.id, self._unique_id)
        return result16.StartTransaction(
            transaction_id=transaction_id, id_tag_info={"status": self._status(id_tag)}
        )

    @on("StopTransaction")
    def stop_transaction(self, **kw: Any) -> Any:
        return result16.StopTransaction()

    @on("MeterValues")
    def meter_values(self, **kw: Any) -> Any:
        return result16.MeterValues()


class Central201(_Central, ChargePoint201):
    """The CSMS side of a 2.0.1 charging station (also the gateway's own identity)."""

    @on("BootNotification")
    def boot(self, **kw: Any) -> Any:
        return result201.BootNotification(current_time=now_text(), interval=123, status="Accepted")

    @on("Heartbeat")
    def heartbeat(self, **kw: Any) -> Any:
        return result201.Heartbeat(current_time=now_text())

    @on("StatusNotification")
    def status(self, **kw: Any) -> Any:
        return result201.StatusNotification()

    @on("Authorize")
    def authorize(self, id_token: dict[str, Any], **kw: Any) -> Any:
        return result201.Authorize(id_token_info={"status": self._status(id_token["id_token"])})

    @on("TransactionEvent")
    def transaction_event(self, id_token: dict[str, Any] | None = None, **kw: Any) -> Any:
        if id_token is None:
            return result201.TransactionEvent()
        info = {"status": self._status(id_token["id_token"])}
        return result201.TransactionEvent(id_token_info=info)

    @on("MeterValues")
    def meter_values(self, **kw: Any) -> Any:
        return result201.MeterValues()


class CsmsThread:
    """The test CSMS; `start()`/`stop()` (blocking, for `trio.to_thread`) as often as needed."""

    def __init__(self) -> None:
        self.port = 0
        self.accepted: set[str] = {"TAG-OK"}
        self.frames: list[tuple[str, list[Any]]] = []
        self.connections: dict[str, Any] = {}
        self._lock = threading.Condition()
        self._transactions: dict[tuple[str, str], int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    def log(self, identity: str, frame: list[Any]) -> None:
        with self._lock:
            self.frames.append((identity, frame))
            self._lock.notify_all()

    def transaction_id(self, identity: str, unique_id: str) -> int:
        """A new id per StartTransaction; a repeated message id gets the id it got before."""
        with self._lock:
            key = (identity, unique_id)
            if key not in self._transactions:
                self._transactions[key] = 1000 + len(self._transactions)
            return self._transactions[key]

    def calls(self, identity: str, action: str | None = None) -> list[list[Any]]:
        """The Call frames `identity` sent (of one action), in arrival order."""
        with self._lock:
            return [
                f
                for i, f in self.frames
                if i == identity and f[0] == 2 and (action is None or f[2] == action)
            ]

    def wait_calls(self, count: int, timeout: float, identities: set[str] | None = None) -> int:
        """Block until `count` Call frames arrived from `identities` (None: anyone); how many did."""
        with self._lock:
            self._lock.wait_for(lambda: self._call_count(identities) >= count, timeout)
            return self._call_count(identities)

    def wait_delivered(self, last_ids: dict[str, str], timeout: float) -> None:
        """Block until each identity's Call with the given message id arrived."""

        def delivered() -> bool:
            seen = {(i, f[1]) for i, f in self.frames if f[0] == 2}
            return all(item in seen for item in last_ids.items())

        with self._lock:
            if not self._lock.wait_for(delivered, timeout):
                raise TimeoutError(f"not all of {last_ids} arrived")

    def _call_count(self, identities: set[str] | None) -> int:
        return sum(
            1 for i, f in self.frames if f[0] == 2 and (identities is None or i in identities)
        )

    async def _serve(self, connection: Any) -> None:
        identity = connection.request.path.rsplit("/", 1)[-1]
        factory = Central16 if connection.subprotocol == "ocpp1.6" else Central201
        central = factory(identity, connection)
        central.csms = self
        self.connections[identity] = central
        try:
            await central.start()
        except websockets.ConnectionClosed:
            pass
        finally:
            if self.connections.get(identity) is central:
                del self.connections[identity]

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with websockets.serve(
            self._serve,
            "127.0.0.1",
            self.port,
            subprotocols=SUBPROTOCOLS,  # type: ignore[arg-type]
        ) as server:
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[index]
            self._ready.set()
            await self._stop.wait()
            server.close()
            await server.wait_closed()

    def start(self) -> CsmsThread:
        """Listen (on the port of the last run, if any)."""
        self._ready.clear()
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise TimeoutError("the test CSMS did not start")
        return self

    def stop(self) -> None:
        """Close the listener and every connection."""
        if self._thread is None or self._loop is None or self._stop is None:
            return
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self._thread = None

    def call(self, identity: str, payload: Any, timeout: float = 5.0) -> Any:
        """Send a call to a connected charge point (through the proxy) and wait for the result."""
        central = self.connections[identity]
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(central.call(payload, suppress=False), self._loop)
        return future.result(timeout)

    def wait_connected(self, identity: str, timeout: float = 5.0) -> None:
        """Block until `identity` has a connection."""
        deadline = threading.Event()
        for _ in range(int(timeout / 0.01)):
            if identity in self.connections:
                return
            deadline.wait(0.01)
        raise TimeoutError(f"{identity} did not connect to the CSMS")


def main(expected: int) -> None:
    """Serve in this process (for benchmarks: its own interpreter and GIL): print the port,
    then `received N` once `expected` calls arrived; stop when stdin closes."""
    csms = CsmsThread().start()
    print(f"port {csms.port}", flush=True)
    print(f"received {csms.wait_calls(expected, 600, None)}", flush=True)
    sys.stdin.read()
    csms.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]))
