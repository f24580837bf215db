"""OCPP server cost per message: hubgate's session against the `ocpp` package, same frames.

hubgate: an `OcppSession` with the real 1.6 handlers (the station's state is
updated) over an in-memory transport: parse, validate the request, handle,
validate the result, encode the reply. The peer: an `ocpp.v16.ChargePoint`
whose handlers only answer, fed through `route_message` (it also validates both
ways). Neither includes WebSocket framing or socket calls; the loopback load
test in bench/test_bench_ocpp.py measures the whole path. The figure is this
process's CPU time per message (`time.process_time`, which counts the `ocpp`
package's validation threads too).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio

from hubgate.benchmarking.timing import Comparison
from hubgate.ocpp import handlers_v16
from hubgate.ocpp.policy import CsmsPolicy
from hubgate.ocpp.registry import Admission, Station
from hubgate.ocpp.session import OcppSession
from hubgate.ocpp.versions import OcppVersion

HEARTBEAT_PERIOD_S = 60.0
METER_VALUES_PERIOD_S = 10.0
"""The standard rates: a Heartbeat a minute, MeterValues every 10 s."""


def _sample(measurand: str, value: str, unit: str, phase: str | None = None) -> dict[str, str]:
    sample = {"value": value, "measurand": measurand, "unit": unit, "context": "Sample.Periodic"}
    return sample if phase is None else {**sample, "phase": phase}


METER_VALUES: dict[str, Any] = {
    "connectorId": 1,
    "transactionId": 42,
    "meterValue": [
        {
            "timestamp": "2026-11-25T12:00:00Z",
            "sampledValue": [
                _sample("Current.Import", "16.1", "A", "L1"),
                _sample("Current.Import", "15.9", "A", "L2"),
                _sample("Current.Import", "16.0", "A", "L3"),
                _sample("Voltage", "231.2", "V", "L1-N"),
                _sample("Voltage", "230.8", "V", "L2-N"),
                _sample("Voltage", "229.9", "V", "L3-N"),
                _sample("Power.Active.Import", "11.04", "kW"),
                _sample("Energy.Active.Import.Register", "1234.5", "kWh"),
                _sample("Current.Offered", "16", "A"),
                _sample("SoC", "63", "Percent"),
            ],
        }
    ],
}
"""A 1.6 MeterValues with 10 sampled values (three-phase current, voltage, power, energy)."""

MESSAGES: dict[str, dict[str, Any]] = {"Heartbeat": {}, "MeterValues": METER_VALUES}


def _frames(action: str, count: int) -> list[str]:
    return [json.dumps([2, str(n), action, MESSAGES[action]]) for n in range(count)]


class _MemoryTransport:
    """A session's connection as two memory channels."""

    def __init__(self) -> None:
        self.to_session, self._incoming = trio.open_memory_channel[str](1)
        self._outgoing, self.from_session = trio.open_memory_channel[str](1)

    async def get_message(self) -> str:
        return await self._incoming.receive()

    async def send_message(self, message: str | bytes) -> None:
        await self._outgoing.send(str(message))


def hubgate_cost_s(action: str, count: int) -> float:
    """CPU seconds per `action` message through hubgate's session, over `count` messages."""
    frames = _frames(action, count)

    async def main() -> float:
        transport = _MemoryTransport()
        station = Station(Admission("BENCH", "bench", (OcppVersion.V16,)))
        handlers = handlers_v16.handlers(station, CsmsPolicy())
        session = OcppSession(transport, OcppVersion.V16, handlers, identity="BENCH")
        async with trio.open_nursery() as nursery:
            await nursery.start(session.run)
            for frame in frames[:10]:  # warm
                await transport.to_session.send(frame)
                await transport.from_session.receive()
            started = time.process_time()
            for frame in frames:
                await transport.to_session.send(frame)
                reply = json.loads(await transport.from_session.receive())
                if reply[0] != 3:
                    raise RuntimeError(f"hubgate answered {action} with {reply}")
            spent = time.process_time() - started
            nursery.cancel_scope.cancel()
        return spent / count

    return trio.run(main)


def ocpp_package_cost_s(action: str, count: int) -> float:
    """The same through the `ocpp` package (raises ImportError when it is not installed)."""
    from ocpp.routing import on  # type: ignore[import-untyped]
    from ocpp.v16 import ChargePoint, call_result  # type: ignore[import-untyped]

    class Connection:
        reply = ""

        async def send(self, message: str) -> None:
            self.reply = message

    class Csms(ChargePoint):  # type: ignore[misc]
        @on("Heartbeat")  # type: ignore[untyped-decorator]
        def heartbeat(self) -> Any:
            return call_result.Heartbeat(current_time="2026-11-25T12:00:00Z")

        @on("MeterValues")  # type: ignore[untyped-decorator]
        def meter_values(self, **_payload: Any) -> Any:
            return call_result.MeterValues()

    frames = _frames(action, count)

    async def main() -> float:
        connection = Connection()
        csms = Csms("BENCH", connection)
        for frame in frames[:10]:
            await csms.route_message(frame)
        started = time.process_time()
        for frame in frames:
            await csms.route_message(frame)
            if json.loads(connection.reply)[0] != 3:
                raise RuntimeError(f"the ocpp package answered {action} with {connection.reply}")
        return (time.process_time() - started) / count

    return asyncio.run(main())


def station_core_share(meter_values_s: float, heartbeat_s: float) -> float:
    """Share of one core a station takes at the standard rates, from per-message costs."""
    return meter_values_s / METER_VALUES_PERIOD_S + heartbeat_s / HEARTBEAT_PERIOD_S


@dataclass(frozen=True)
class OcppCost:
    """Per-message cost of each action, and the stations one core serves at the standard rates."""

    per_message: dict[str, Comparison]

    def core_share_per_station(self, pick: Callable[[Comparison], float]) -> float:
        """Share of one core a station takes: MeterValues every 10 s, Heartbeat every 60 s."""
        return station_core_share(
            pick(self.per_message["MeterValues"]), pick(self.per_message["Heartbeat"])
        )

    def stations_per_core(self) -> Comparison:
        """Stations per core, hubgate and the peer, as a `Comparison` of per-station cost."""
        peer = all(c.peer_s is not None for c in self.per_message.values())
        return Comparison(
            self.core_share_per_station(lambda c: c.hubgate_s),
            "ocpp-package",
            self.core_share_per_station(lambda c: c.peer_s or 0.0) if peer else None,
        )


def measure_ocpp(count: int) -> OcppCost:
    """Heartbeat and MeterValues, `count` messages each, through hubgate and the peer."""
    costs = {}
    for action in MESSAGES:
        try:
            peer_s: float | None = ocpp_package_cost_s(action, count)
        except ImportError:
            peer_s = None
        costs[action] = Comparison(hubgate_cost_s(action, count), "ocpp-package", peer_s)
    return OcppCost(costs)


def listener_cost_s(stations: int, messages: int) -> dict[str, float]:
    """CPU seconds per message of the whole server path, per action: hubgate's
    `OcppListener` (WebSocket framing, sockets, session, handlers) in a thread of
    its own, `stations` trio-websocket clients in another sending `messages`
    calls each; the listener thread's own CPU time (`time.thread_time`) counts."""
    from trio_websocket import open_websocket_url

    from hubgate.config.services import OcppServer
    from hubgate.ocpp.registry import StationRegistry
    from hubgate.ocpp.server import OcppListener

    registry = StationRegistry(
        Admission(f"CP{n}", f"cp-{n}", (OcppVersion.V16,)) for n in range(stations)
    )
    server = _ServerThread(OcppListener(OcppServer(port=0), registry))
    costs: dict[str, float] = {}

    async def station(url: str, frames: list[str]) -> None:
        async with open_websocket_url(url, subprotocols=["ocpp1.6"], connect_timeout=30) as ws:
            for frame in frames:
                await ws.send_message(frame)
                if json.loads(await ws.get_message())[0] != 3:
                    raise RuntimeError(f"the listener rejected {frame[:60]}")

    async def load(action: str) -> None:
        frames = _frames(action, messages)
        async with trio.open_nursery() as nursery:
            for n in range(stations):
                url = f"ws://127.0.0.1:{server.port}/ocpp/CP{n}"
                nursery.start_soon(station, url, frames)

    with server:
        for action in MESSAGES:
            trio.run(load, "Heartbeat")  # warm: connect once, load the schemas
            before = server.cpu_s()
            trio.run(load, action)
            # Each round also opens and closes `stations` connections: small next to
            # `messages` calls each, and counted against the messages (an upper bound).
            costs[action] = (server.cpu_s() - before) / (stations * messages)
    return costs


class _ServerThread:
    """A listener served by a Trio loop in a thread; `cpu_s` is that thread's CPU time."""

    def __init__(self, listener: Any) -> None:
        self.port = 0
        self._listener = listener
        self._ready = threading.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._thread = threading.Thread(target=trio.run, args=(self._main,), daemon=True)

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        async with trio.open_nursery() as nursery:
            self.port = await nursery.start(self._listener.serve)
            self._ready.set()
            await self._stop.wait()
            nursery.cancel_scope.cancel()

    def cpu_s(self) -> float:
        return float(trio.from_thread.run_sync(time.thread_time, trio_token=self._token))

    def __enter__(self) -> _ServerThread:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the OCPP listener did not start")
        return self

    def __exit__(self, *_exc: object) -> None:
        assert self._stop is not None
        trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join(10)
