"""A load-generator process of the OCPP load benchmark: many 1.6 stations from one thread.

Lean on purpose, so that the generator is not what is measured: plain sockets and one
`epoll` set for all of its stations, the opening handshake written by hand (RFC 6455 4.1,
the server's `Sec-WebSocket-Accept` checked), each frame masked with a random key (5.3)
and the answers' frames read by their headers. trio-websocket clients cost the machine
twice the server's CPU at 10,000 stations (docs/performance.md, session 7). Of hubgate it
uses only the MeterValues payload the other OCPP benchmarks send.

Protocol with the parent (bench/test_bench_ocpp.py): prints `booted` once all stations
have connected and had their BootNotification answered, starts the window at the next
line on stdin, prints the latencies (JSON, seconds: `read`, from each call's send to its
answer read here, and `at_socket`, to the answer's arrival at the station's socket, the
kernel's receive timestamp, without this process's own wait for a CPU) once every call of
the window is answered, and closes the connections at the next line.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import json
import os
import random
import select
import socket
import struct
import sys
import time
from typing import Any

from hubgate.benchmarking.ocpp_cost import METER_VALUES

PERIODS_S = {"MeterValues": 10.0, "StatusNotification": 30.0, "Heartbeat": 60.0}
"""How often each station sends what, at the real rates."""
STATUS = {"connectorId": 1, "errorCode": "NoError", "status": "Charging"}
PAYLOADS: dict[str, dict[str, Any]] = {
    "MeterValues": METER_VALUES,
    "StatusNotification": STATUS,
    "Heartbeat": {},
}
PAYLOAD_TEXT = {action: json.dumps(payload) for action, payload in PAYLOADS.items()}
"""Serialised once: the generator's CPU per call is framing and the socket calls."""
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
SO_TIMESTAMPNS = 35
"""Linux (`asm-generic/socket.h`; the `socket` module lacks it): each read's ancillary data
carries the time its first byte arrived (CLOCK_REALTIME, as `time.time`)."""
BATCH = 100
"""Stations that connect at once (their handshakes in flight together)."""


def schedule(window_s: float, speedup: float) -> list[tuple[float, str]]:
    """When one station sends what within the window: periodic, with a random phase."""
    events = []
    for action, period in PERIODS_S.items():
        at = random.uniform(0, period / speedup)
        while at < window_s:
            events.append((at, action))
            at += period / speedup
    return sorted(events)


TEXT, PING, PONG = 0x1, 0x9, 0xA


def masked_frame(text: str, opcode: int = TEXT) -> bytes:
    """A client's frame (FIN, masked with a random key)."""
    data = text.encode("latin-1") if opcode != TEXT else text.encode()
    size = len(data)
    first = 0x80 | opcode
    if size < 126:
        header = bytes((first, 0x80 | size))
    elif size < 65536:
        header = bytes((first, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((first, 0x80 | 127)) + size.to_bytes(8, "big")
    key = os.urandom(4)
    mask = (key * (size // 4 + 1))[:size]
    body = (int.from_bytes(data, "big") ^ int.from_bytes(mask, "big")).to_bytes(size, "big")
    return header + key + body


def frames(buffer: bytearray) -> list[tuple[int, bytes]]:
    """Take the complete frames out of `buffer`, (opcode, payload) each (server frames: not
    masked; text, ping or pong, each whole)."""
    out = []
    while len(buffer) >= 2:
        first, second = buffer[0], buffer[1]
        if first not in (0x80 | TEXT, 0x80 | PING, 0x80 | PONG) or second & 0x80:
            raise RuntimeError(f"unexpected frame header {bytes(buffer[:2])!r}")
        size, start = second & 0x7F, 2
        if size == 126:
            if len(buffer) < 4:
                break
            size, start = int.from_bytes(buffer[2:4], "big"), 4
        elif size == 127:
            if len(buffer) < 10:
                break
            size, start = int.from_bytes(buffer[2:10], "big"), 10
        if len(buffer) < start + size:
            break
        out.append((first & 0x0F, bytes(buffer[start : start + size])))
        del buffer[: start + size]
    return out


class Station:
    """One simulated station's connection and its place in the window."""

    __slots__ = ("buffer", "due", "events", "next", "sent_at", "sock")

    def __init__(self, sock: socket.socket, events: list[tuple[float, str]]) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.events = events
        self.next = 0
        self.sent_at = 0.0
        """When the call in flight was sent (0: none in flight)."""
        self.due = False
        """Its next call is due but waits for the answer to the one in flight."""


def _upgrade(sock: socket.socket, port: int, identity: str) -> bytes:
    key = base64.b64encode(os.urandom(16))
    sock.sendall(
        f"GET /ocpp/{identity} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode()
        + b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "
        + key
        + b"\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ocpp1.6\r\n\r\n"
    )
    return base64.b64encode(hashlib.sha1(key + _GUID).digest())


def _read_until(sock: socket.socket, buffer: bytearray, marker: bytes) -> bytes:
    while marker not in buffer:
        data = sock.recv(65536)
        if not data:
            raise RuntimeError("the server closed a connection while it was set up")
        buffer += data
    head, _, rest = bytes(buffer).partition(marker)
    buffer[:] = rest
    return head


def _read_frame(sock: socket.socket, buffer: bytearray) -> bytes:
    """The next text frame's payload (pings answered; nothing else arrives before it)."""
    while True:
        texts = []
        for opcode, payload in frames(buffer):
            if opcode == PING:
                sock.sendall(masked_frame(payload.decode("latin-1"), PONG))
            elif opcode == TEXT:
                texts.append(payload)
        if texts:
            return texts[0]
        data = sock.recv(65536)
        if not data:
            raise RuntimeError("the server closed a connection while it was set up")
        buffer += data


def connect(port: int, names: list[str], window_s: float, speedup: float) -> list[Station]:
    """Open and boot every station, `BATCH` at a time (blocking sockets)."""
    stations = []
    boot = {"chargePointVendor": "Load", "chargePointModel": "Sim"}
    for start in range(0, len(names), BATCH):
        batch = []
        for identity in names[start : start + BATCH]:
            sock = socket.create_connection(("127.0.0.1", port), timeout=600)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            batch.append((sock, _upgrade(sock, port, identity)))
        for sock, accept in batch:
            buffer = bytearray()
            head = _read_until(sock, buffer, b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 101") or b": " + accept not in head:
                raise RuntimeError(f"upgrade refused: {head[:200]!r}")
            sock.sendall(masked_frame(json.dumps([2, "boot", "BootNotification", boot])))
            if json.loads(_read_frame(sock, buffer))[0] != 3:
                raise RuntimeError("BootNotification not answered with a CallResult")
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            stations.append(Station(sock, schedule(window_s, speedup)))
    return stations


def run_window(stations: list[Station]) -> dict[str, list[float]]:
    """Send every station's calls on time (one in flight per station, as OCPP-J allows);
    the latency of each, from its send to its answer read (`read`) and to its answer's
    arrival at the socket (`at_socket`)."""
    poller = select.epoll()
    by_fd = {}
    for station in stations:
        by_fd[station.sock.fileno()] = station
        poller.register(station.sock.fileno(), select.EPOLLIN)
    start = time.time()
    heap = [(start + s.events[0][0], n) for n, s in enumerate(stations) if s.events]
    heapq.heapify(heap)
    pending = sum(len(s.events) for s in stations)
    latencies: list[float] = []
    at_socket: list[float] = []
    counter = 0

    def send(station: Station) -> None:
        nonlocal counter
        _, action = station.events[station.next]
        counter += 1
        frame = masked_frame(f'[2,"{counter}","{action}",{PAYLOAD_TEXT[action]}]')
        station.sent_at = time.time()
        station.sock.sendall(frame)  # a few hundred bytes: the socket buffer takes them
        station.next += 1
        if station.next < len(station.events):
            heapq.heappush(heap, (start + station.events[station.next][0], id_of[station]))

    id_of = {station: n for n, station in enumerate(stations)}
    while pending:
        now = time.time()
        while heap and heap[0][0] <= now:
            _, n = heapq.heappop(heap)
            station = stations[n]
            if station.sent_at:
                station.due = True
            else:
                send(station)
        timeout = max(0.0, heap[0][0] - time.time()) if heap else 1.0
        for fd, _ in poller.poll(timeout):
            station = by_fd[fd]
            data, ancillary, _, _ = station.sock.recvmsg(65536, 64)
            if not data:
                raise RuntimeError("the server closed a connection in the window")
            arrived = _arrival(ancillary)
            station.buffer += data
            for opcode, payload in frames(station.buffer):
                if opcode != TEXT:  # the ocpp-package peer's websockets pings every 20 s
                    if opcode == PING:
                        station.sock.sendall(masked_frame(payload.decode("latin-1"), PONG))
                    continue
                answered = time.time()
                if not payload.startswith(b"[3,"):
                    raise RuntimeError(f"not a CallResult: {payload[:200]!r}")
                latencies.append(answered - station.sent_at)
                at_socket.append(arrived - station.sent_at)
                station.sent_at = 0.0
                pending -= 1
                if station.due:
                    station.due = False
                    send(station)
    poller.close()
    return {"read": latencies, "at_socket": at_socket}


def _arrival(ancillary: list[tuple[int, int, bytes]]) -> float:
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            seconds, nanoseconds = struct.unpack("qq", data[:16])
            return float(seconds + nanoseconds * 1e-9)
    raise RuntimeError("a read without its receive timestamp")


def main(port: int, first: int, count: int, window_s: float, speedup: float) -> None:
    names = [f"LOAD{n}" for n in range(first, first + count)]
    stations = connect(port, names, window_s, speedup)
    print("booted", flush=True)
    sys.stdin.readline()
    print(json.dumps(run_window(stations)), flush=True)
    sys.stdin.readline()
    for station in stations:
        station.sock.close()


if __name__ == "__main__":
    main(*map(int, sys.argv[1:4]), *map(float, sys.argv[4:6]))
