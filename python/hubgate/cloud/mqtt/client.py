"""A sans-IO MQTT 3.1.1 publishing client: bytes and time in, bytes and events out.

It never touches a socket or a clock. The I/O layer calls `connect` for each
new TCP connection, feeds received bytes to `receive_data`, sends whatever
`data_to_send` returns, pulls `next_event` until None, and calls
`handle_timers(now)` by `next_deadline()`.

The session outlives connections (CONNECT with clean session 0): QoS 1
messages not yet acknowledged are sent again, with DUP set and their original
packet ids, as soon as the next connection is accepted (MQTT 3.1.1 §4.4).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from enum import Enum, auto

from hubgate.cloud.mqtt.packets import (
    DISCONNECT_PACKET,
    PINGREQ_PACKET,
    ConnAck,
    MqttProtocolError,
    PacketDecoder,
    PingResp,
    PubAck,
    Publish,
    Will,
    encode_connect,
    encode_puback,
    encode_publish,
)


@dataclass(frozen=True, slots=True)
class Connected:
    """The broker accepted the connection."""

    session_present: bool


@dataclass(frozen=True, slots=True)
class Refused:
    """The broker refused the connection (CONNACK return code 1-5)."""

    return_code: int


@dataclass(frozen=True, slots=True)
class Delivered:
    """The broker acknowledged the QoS 1 message with this packet id."""

    packet_id: int


@dataclass(frozen=True, slots=True)
class Received:
    """The broker delivered a message to us (only if something subscribed us)."""

    message: Publish


@dataclass(frozen=True, slots=True)
class ConnectionLost:
    """The broker closed the connection, or stopped answering pings."""

    reason: str


Event = Connected | Refused | Delivered | Received | ConnectionLost


class State(Enum):
    """Where the current connection is."""

    CLOSED = auto()
    CONNECTING = auto()
    CONNECTED = auto()


class MqttClient:
    """One MQTT session of a publishing client (see the module docstring)."""

    def __init__(
        self,
        client_id: str,
        *,
        keepalive_s: int = 30,
        will: Will | None = None,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self._connect_packet = encode_connect(
            client_id,
            keepalive_s=keepalive_s,
            clean_session=False,
            will=will,
            username=username,
            password=password,
        )
        self._keepalive_s = keepalive_s
        self.state = State.CLOSED
        self._decoder = PacketDecoder()
        self._outgoing = bytearray()
        self._events: deque[Event] = deque()
        self._unacked: dict[int, Publish] = {}
        self._next_id = 1
        self._last_sent = 0.0
        self._ping_sent_at: float | None = None

    @property
    def unacknowledged(self) -> int:
        """QoS 1 messages sent (or waiting to be re-sent) but not yet acknowledged."""
        return len(self._unacked)

    def connect(self, now: float) -> None:
        """A new TCP connection is up: start with CONNECT."""
        self.state = State.CONNECTING
        self._decoder = PacketDecoder()
        self._outgoing = bytearray()
        self._ping_sent_at = None
        self._send(self._connect_packet, now)

    def connection_closed(self) -> None:
        """The TCP connection is gone (I/O error or our own close); the session stays."""
        self.state = State.CLOSED
        self._outgoing = bytearray()

    def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False, now: float
    ) -> int | None:
        """Send a message; returns the packet id for QoS 1 (see `Delivered`), None for QoS 0."""
        if self.state is not State.CONNECTED:
            raise MqttProtocolError("publish needs an accepted connection")
        packet_id = self._allocate_id() if qos else None
        message = Publish(topic, payload, qos, retain, False, packet_id)
        encoded = encode_publish(message)  # validates before the session keeps it
        if packet_id is not None:
            self._unacked[packet_id] = message
        self._send(encoded, now)
        return packet_id

    def _allocate_id(self) -> int:
        if len(self._unacked) >= 0xFFFF:
            raise MqttProtocolError("all 65535 packet ids are waiting for PUBACK")
        while self._next_id in self._unacked:
            self._next_id = self._next_id % 0xFFFF + 1
        packet_id, self._next_id = self._next_id, self._next_id % 0xFFFF + 1
        return packet_id

    def disconnect(self, now: float) -> None:
        """Queue DISCONNECT: a clean close, the broker then discards the will."""
        self._send(DISCONNECT_PACKET, now)
        self.state = State.CLOSED

    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes from the broker; b"" means it closed the connection."""
        if not data:
            self._lost("the broker closed the connection")
            return
        self._decoder.feed(data)
        while (packet := self._decoder.next_packet()) is not None:
            self._handle(packet, now)

    def _handle(self, packet: ConnAck | Publish | PubAck | PingResp, now: float) -> None:
        if isinstance(packet, ConnAck):
            if self.state is not State.CONNECTING:
                raise MqttProtocolError("CONNACK outside of connecting")
            if packet.return_code:
                self.state = State.CLOSED
                self._events.append(Refused(packet.return_code))
                return
            self.state = State.CONNECTED
            self._events.append(Connected(packet.session_present))
            for message in self._unacked.values():  # in the order they were first sent
                self._send(encode_publish(replace(message, dup=True)), now)
            return
        if self.state is not State.CONNECTED:
            raise MqttProtocolError(f"{type(packet).__name__} before CONNACK")
        if isinstance(packet, PubAck):
            if self._unacked.pop(packet.packet_id, None) is not None:
                self._events.append(Delivered(packet.packet_id))
        elif isinstance(packet, PingResp):
            self._ping_sent_at = None
        else:
            if packet.qos == 1 and packet.packet_id is not None:
                self._send(encode_puback(packet.packet_id), now)
            self._events.append(Received(packet))

    def _lost(self, reason: str) -> None:
        if self.state is not State.CLOSED:
            self.state = State.CLOSED
            self._events.append(ConnectionLost(reason))

    def next_event(self) -> Event | None:
        """The next event, or None."""
        return self._events.popleft() if self._events else None

    def data_to_send(self) -> bytes:
        """Bytes to write to the broker now (and forget)."""
        data, self._outgoing = bytes(self._outgoing), bytearray()
        return data

    def _send(self, packet: bytes, now: float) -> None:
        self._outgoing += packet
        self._last_sent = now

    def next_deadline(self) -> float | None:
        """When `handle_timers` must run next (None: no timer while closed or keepalive 0)."""
        if self.state is State.CLOSED or not self._keepalive_s:
            return None
        if self._ping_sent_at is not None:
            return self._ping_sent_at + self._keepalive_s
        return self._last_sent + self._keepalive_s

    def handle_timers(self, now: float) -> None:
        """Keepalive: PINGREQ after keepalive_s of silence; no PINGRESP within another keepalive_s
        (or no CONNACK within keepalive_s) means the connection is lost."""
        deadline = self.next_deadline()
        if deadline is None or now < deadline:
            return
        if self.state is State.CONNECTING or self._ping_sent_at is not None:
            self._lost(f"no answer from the broker within {self._keepalive_s} s")
            return
        self._ping_sent_at = now
        self._send(PINGREQ_PACKET, now)
