"""The test CSMS: the `ocpp` package's asyncio ChargePoint on the server side of a
`websockets` server, in its own thread with its own event loop.

It answers 1.6 and 2.0.1 charge points, logs every frame they send, lets the test call
them, can be stopped and started again on the same port, and can require HTTP Basic auth
(OCPP security profiles 1 and 2) and TLS. Run as a script it serves in its own process
(for benchmarks: its own interpreter and GIL).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import ssl
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from types import ModuleType
from typing import Any

import ocpp.messages
import websockets
from ocpp.charge_point import camel_to_snake_case
from ocpp.exceptions import GenericError
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call_result as result16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call_result as result201

from tests.support.charge_points import now_text
from tests.support.wait import wait_until_blocking

SUBPROTOCOLS = ["ocpp1.6", "ocpp2.0.1"]

ocpp.messages.ASYNC_VALIDATION = False
"""Validate inline rather than in the loop's thread pool: a thread hop per message would
make the test peers, not hubgate, the bottleneck of the replay tests."""


class _Central:
    """What both versions share: the frame log, the calls of this connection, tokens, and
    the answers alike in both; `results` is the version's `call_result` module."""

    csms: CsmsThread
    results: ModuleType
    calls: list[list[Any]]
    """This connection's Call frames."""

    async def route_message(self, raw: str | bytes) -> None:
        frame = json.loads(raw)
        self.csms.log(self.id, frame)  # type: ignore[attr-defined]
        if frame[0] == 2:
            self.calls.append(frame)
            if self.csms.delay_s:
                await asyncio.sleep(self.csms.delay_s)
        await super().route_message(raw)  # type: ignore[misc]

    def _status(self, token: str) -> str:
        accepted = self.csms.accepted
        return "Accepted" if accepted is None or token in accepted else "Invalid"

    def _refuse_start(self, token: str | None) -> None:
        """A CallError to the start of a transaction with a token the CSMS refuses so."""
        if token in self.csms.refuse_starts:
            raise GenericError(f"no transaction for {token}")

    @on("BootNotification")
    def boot(self, **kw: Any) -> Any:
        return self.results.BootNotification(
            current_time=now_text(), interval=self.csms.heartbeat_s, status="Accepted"
        )

    @on("Heartbeat")
    def heartbeat(self, **kw: Any) -> Any:
        return self.results.Heartbeat(current_time=now_text())

    @on("StatusNotification")
    def status(self, **kw: Any) -> Any:
        return self.results.StatusNotification()

    @on("MeterValues")
    def meter_values(self, **kw: Any) -> Any:
        return self.results.MeterValues()


class Central16(_Central, ChargePoint16):
    """The CSMS side of a 1.6 charge point."""

    results = result16

    @on("Authorize")
    def authorize(self, id_tag: str) -> Any:
        return result16.Authorize(id_tag_info={"status": self._status(id_tag)})

    @on("StartTransaction")
    def start_transaction(self, id_tag: str, call_unique_id: str, **kw: Any) -> Any:
        self._refuse_start(id_tag)
        transaction_id = self.csms.transaction_id(self.id, call_unique_id)
        return result16.StartTransaction(
            transaction_id=transaction_id, id_tag_info={"status": self._status(id_tag)}
        )

    @on("StopTransaction")
    def stop_transaction(self, **kw: Any) -> Any:
        return result16.StopTransaction()

    @on("DataTransfer")
    def data_transfer(self, **kw: Any) -> Any:
        return result16.DataTransfer(status="Accepted", data="from the CSMS")


class Central201(_Central, ChargePoint201):
    """The CSMS side of a 2.0.1 charging station (also the gateway's own identity)."""

    results = result201

    @on("Authorize")
    def authorize(self, id_token: dict[str, Any], **kw: Any) -> Any:
        return result201.Authorize(id_token_info={"status": self._status(id_token["id_token"])})

    @on("TransactionEvent")
    def transaction_event(
        self, event_type: str, id_token: dict[str, Any] | None = None, **kw: Any
    ) -> Any:
        if id_token is None:
            return result201.TransactionEvent()
        if event_type == "Started":
            self._refuse_start(id_token["id_token"])
        info = {"status": self._status(id_token["id_token"])}
        return result201.TransactionEvent(id_token_info=info)

    @on("DataTransfer")
    def data_transfer(self, **kw: Any) -> Any:
        return result201.DataTransfer(status="Accepted", data="from the CSMS")

    @on("SignCertificate")
    def sign_certificate(self, **kw: Any) -> Any:
        return result201.SignCertificate(status="Accepted")

    @on("Get15118EVCertificate")
    def get_15118_ev_certificate(self, **kw: Any) -> Any:
        return result201.Get15118EVCertificate(status="Accepted", exi_response="c2lnbmVk")

    @on("GetCertificateStatus")
    def get_certificate_status(self, **kw: Any) -> Any:
        return result201.GetCertificateStatus(status="Accepted", ocsp_result="b2s=")

    @on("NotifyEVChargingNeeds")
    def notify_ev_charging_needs(self, **kw: Any) -> Any:
        return result201.NotifyEVChargingNeeds(status="Accepted")


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(user, password) of an HTTP Basic `Authorization` header; None if it is not one."""
    if header is None or not header.startswith("Basic "):
        return None
    try:
        user, sep, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


class CsmsThread:
    """The test CSMS; `start()`/`stop()` (blocking, for `trio.to_thread`) as often as needed.

    `accepted`: the id tokens it authorizes (None: every one); `refuse_starts`: id tokens
    whose transaction start it answers with a CallError; `heartbeat_s`: the interval it
    answers boots with; `passwords`: when set, each charge point's Basic-auth password
    (profiles 1/2: user = identity), others get 401; `ssl_context`: serve TLS (wss);
    `delay_s`: how long it takes over each call (a remote CSMS's latency)."""

    def __init__(
        self,
        *,
        accepted: set[str] | None = None,
        refuse_starts: set[str] | None = None,
        heartbeat_s: int = 300,
        passwords: dict[str, str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        delay_s: float = 0.0,
    ) -> None:
        self.port = 0
        self.accepted = accepted
        self.refuse_starts = refuse_starts or set()
        self.delay_s = delay_s
        self.heartbeat_s = heartbeat_s
        self.passwords = passwords
        self.frames: list[tuple[str, list[Any]]] = []
        self.arrived_at: dict[tuple[str, str], float] = {}
        """(identity, message id) → when its Call first arrived (`time.monotonic`)."""
        self.connections: dict[str, Any] = {}
        """The connections that are up, by identity."""
        self.latest: dict[str, Any] = {}
        """The latest connection of each identity, up or not."""
        self.arrivals: list[str] = []
        """Identities in the order their connections were accepted."""
        self.refused: list[str] = []
        """Identities whose opening handshake was refused for its credentials."""
        self.peer_names: dict[str, str] = {}
        """The common name of each identity's latest TLS client certificate."""
        self._ssl = ssl_context
        self._lock = threading.Condition()
        self._call_counts: Counter[str] = Counter()
        self._delivered: set[tuple[str, str]] = set()
        """(identity, message id) of every Call received, for the waits."""
        self._transactions: dict[tuple[str, str], int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        """Where charge points dial (their identity appended)."""
        return f"{'wss' if self._ssl else 'ws'}://127.0.0.1:{self.port}"

    def log(self, identity: str, frame: list[Any]) -> None:
        with self._lock:
            self.frames.append((identity, frame))
            if frame[0] == 2:
                self._call_counts[identity] += 1
                self._delivered.add((identity, frame[1]))
                self.arrived_at.setdefault((identity, frame[1]), time.monotonic())
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

    def received(self, identity: str, action: str) -> list[dict[str, Any]]:
        """Payloads (snake_case keys) of `action` on the latest connection of `identity`."""
        central = self.latest.get(identity)
        calls = list(central.calls) if central else []
        return [camel_to_snake_case(f[3]) for f in calls if f[2] == action]

    def wait_calls(self, count: int, timeout: float, identities: set[str] | None = None) -> int:
        """Block until `count` Call frames arrived from `identities` (None: anyone); how many did."""
        with self._lock:
            self._lock.wait_for(lambda: self._call_count(identities) >= count, timeout)
            return self._call_count(identities)

    def wait_delivered(self, last_ids: dict[str, str], timeout: float) -> None:
        """Block until each identity's Call with the given message id arrived."""

        def delivered() -> bool:
            return all(item in self._delivered for item in last_ids.items())

        with self._lock:
            if not self._lock.wait_for(delivered, timeout):
                raise TimeoutError(f"not all of {last_ids} arrived")

    def wait_refused(self, identity: str, count: int, timeout: float) -> None:
        """Block until `identity` was refused `count` times."""
        with self._lock:
            if not self._lock.wait_for(lambda: self.refused.count(identity) >= count, timeout):
                raise TimeoutError(f"{identity} refused {self.refused.count(identity)} times")

    def _call_count(self, identities: set[str] | None) -> int:
        counts = self._call_counts
        return sum(counts.values() if identities is None else (counts[i] for i in identities))

    def _check_credentials(self, connection: Any, request: Any) -> Any:
        """The opening handshake's Basic auth: None lets it through, else a 401 response."""
        assert self.passwords is not None
        identity = request.path.rsplit("/", 1)[-1]
        credentials = basic_credentials(request.headers.get("Authorization"))
        password = self.passwords.get(identity)
        if password is not None and credentials == (identity, password):
            return None
        with self._lock:
            self.refused.append(identity)
            self._lock.notify_all()
        return connection.respond(HTTPStatus.UNAUTHORIZED, "wrong credentials\n")

    async def _serve(self, connection: Any) -> None:
        identity = connection.request.path.rsplit("/", 1)[-1]
        factory = Central16 if connection.subprotocol == "ocpp1.6" else Central201
        central = factory(identity, connection)
        central.csms = self
        central.calls = []
        certificate = connection.transport.get_extra_info("peercert")
        if certificate:
            subject = dict(item for rdn in certificate["subject"] for item in rdn)
            self.peer_names[identity] = subject["commonName"]
        self.connections[identity] = central
        self.latest[identity] = central
        self.arrivals.append(identity)
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
            ssl=self._ssl,
            process_request=None if self.passwords is None else self._check_credentials,
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

    def call(self, identity: str, payload: Any, timeout: float = 10.0) -> Any:
        """Send a call to a connected charge point and wait for the result."""
        central = self.connections[identity]
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(central.call(payload, suppress=False), self._loop)
        return future.result(timeout)

    def send_raw(self, identity: str, text: str | bytes, timeout: float = 5.0) -> None:
        """Send one text frame as it is (bytes: even when not UTF-8) to a charge point."""
        central = self.connections[identity]
        assert self._loop is not None
        sent = central._connection.send(text, text=True)
        asyncio.run_coroutine_threadsafe(sent, self._loop).result(timeout)

    def wait_connected(self, identity: str, timeout: float = 5.0) -> None:
        """Block until `identity` has a connection."""
        wait_until_blocking(lambda: identity in self.connections, f"{identity} to connect", timeout)


def proxy_csms() -> CsmsThread:
    """The CSMS of the proxy tests: it authorizes only TAG-OK, and answers boots with a
    123 s interval (hubgate's own answer would say 60)."""
    return CsmsThread(accepted={"TAG-OK"}, heartbeat_s=123)


@contextmanager
def running_csms(**options: Any) -> Iterator[CsmsThread]:
    """A started `CsmsThread(**options)` on a free loopback port, stopped at the end."""
    csms = CsmsThread(**options).start()
    try:
        yield csms
    finally:
        csms.stop()


def main(expected: int, arrivals: str | None = None) -> None:
    """Serve in this process: print the port, then `received N` once `expected` calls
    arrived (and with `arrivals`, write there when each first arrived: JSON lines of
    identity, message id and `time.monotonic()`, a clock all processes share); stop when
    stdin closes."""
    csms = proxy_csms().start()
    print(f"port {csms.port}", flush=True)
    received = csms.wait_calls(expected, 600, None)
    if arrivals is not None:
        with open(arrivals, "w") as out:
            for (identity, message_id), at in csms.arrived_at.items():
                out.write(json.dumps([identity, message_id, at]) + "\n")
    print(f"received {received}", flush=True)
    sys.stdin.read()
    csms.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]), *sys.argv[2:3])
