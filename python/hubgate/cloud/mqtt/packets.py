"""MQTT 3.1.1 packets a publishing client needs: encode and incrementally decode.

Client to broker: CONNECT (with will, credentials, keepalive), PUBLISH (QoS 0
and 1), PUBACK, PINGREQ, DISCONNECT. Broker to client: CONNACK, PUBLISH,
PUBACK, PINGRESP. Anything else from the broker, or a malformed packet, is an
`MqttProtocolError` (MQTT 3.1.1 §4.8: the client then closes the connection).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from hubgate._core import HubgateError

CONNECT, CONNACK, PUBLISH, PUBACK, PINGREQ, PINGRESP, DISCONNECT = 1, 2, 3, 4, 12, 13, 14
MAX_REMAINING_LENGTH = 268_435_455
"""The largest remaining length four variable-length bytes can carry (§2.2.3)."""


class MqttProtocolError(HubgateError):
    """Bytes from the broker that are not valid MQTT 3.1.1 for a client, or an unencodable value."""


@dataclass(frozen=True, slots=True)
class Will:
    """The message the broker publishes for us when the connection drops without DISCONNECT."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


@dataclass(frozen=True, slots=True)
class ConnAck:
    """CONNACK: return code 0 is accepted, 1-5 are refusals (§3.2.2.3)."""

    session_present: bool
    return_code: int


@dataclass(frozen=True, slots=True)
class Publish:
    """A PUBLISH in either direction."""

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    dup: bool = False
    packet_id: int | None = None


@dataclass(frozen=True, slots=True)
class PubAck:
    """PUBACK for a QoS 1 PUBLISH."""

    packet_id: int


@dataclass(frozen=True, slots=True)
class PingResp:
    """PINGRESP."""


Incoming = ConnAck | Publish | PubAck | PingResp


def _string(value: str | bytes) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    if len(data) > 0xFFFF:
        raise MqttProtocolError(f"a string or binary field is at most 65535 bytes, got {len(data)}")
    return struct.pack("!H", len(data)) + data


def _packet(first_byte: int, body: bytes) -> bytes:
    length = len(body)
    if length > MAX_REMAINING_LENGTH:
        raise MqttProtocolError(f"packet body of {length} bytes is above the MQTT maximum")
    header = bytearray([first_byte])
    while True:
        byte, length = length % 128, length // 128
        header.append(byte | (0x80 if length else 0))
        if not length:
            return bytes(header + body)


def check_topic(topic: str) -> None:
    """Raise MqttProtocolError unless `topic` is a topic name one may publish to."""
    if not topic or "+" in topic or "#" in topic or "\0" in topic:
        raise MqttProtocolError(f"not a valid topic name to publish to: {topic!r}")


def encode_connect(
    client_id: str,
    *,
    keepalive_s: int,
    clean_session: bool,
    will: Will | None = None,
    username: str | None = None,
    password: str | None = None,
) -> bytes:
    """CONNECT (protocol level 4 = 3.1.1)."""
    if not 0 <= keepalive_s <= 0xFFFF:
        raise MqttProtocolError(f"keepalive must be 0-65535 s, got {keepalive_s}")
    if password is not None and username is None:
        raise MqttProtocolError("MQTT 3.1.1 needs a username to send a password")
    flags = 0x02 if clean_session else 0
    payload = _string(client_id)
    if will is not None:
        check_topic(will.topic)
        flags |= 0x04 | (will.qos << 3) | (0x20 if will.retain else 0)
        payload += _string(will.topic) + _string(will.payload)
    if username is not None:
        flags |= 0x80
        payload += _string(username)
    if password is not None:
        flags |= 0x40
        payload += _string(password)
    header = _string("MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive_s)
    return _packet(CONNECT << 4, header + payload)


def encode_publish(message: Publish) -> bytes:
    """PUBLISH; QoS 1 needs a packet id 1-65535."""
    check_topic(message.topic)
    if message.qos not in (0, 1):
        raise MqttProtocolError(f"this client publishes QoS 0 or 1, not {message.qos}")
    flags = (0x08 if message.dup else 0) | (message.qos << 1) | (0x01 if message.retain else 0)
    body = _string(message.topic)
    if message.qos:
        if message.packet_id is None or not 0 < message.packet_id <= 0xFFFF:
            raise MqttProtocolError(f"QoS 1 needs a packet id 1-65535, got {message.packet_id}")
        body += struct.pack("!H", message.packet_id)
    return _packet((PUBLISH << 4) | flags, body + message.payload)


def encode_puback(packet_id: int) -> bytes:
    """PUBACK."""
    return _packet(PUBACK << 4, struct.pack("!H", packet_id))


PINGREQ_PACKET = bytes([PINGREQ << 4, 0])
DISCONNECT_PACKET = bytes([DISCONNECT << 4, 0])


class PacketDecoder:
    """Splits the broker's byte stream into packets; feed bytes, then pull packets."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> None:
        """Append received bytes."""
        self._buffer += data

    def next_packet(self) -> Incoming | None:
        """The next whole packet, or None until more bytes arrive."""
        buffer = self._buffer
        length, multiplier, pos = 0, 1, 1
        while True:
            if pos >= len(buffer):
                return None
            byte = buffer[pos]
            length += (byte & 0x7F) * multiplier
            pos += 1
            if not byte & 0x80:
                break
            multiplier *= 128
            if pos > 4:
                raise MqttProtocolError("remaining length longer than four bytes")
        if len(buffer) < pos + length:
            return None
        first, body = buffer[0], bytes(buffer[pos : pos + length])
        del buffer[: pos + length]
        return _decode(first >> 4, first & 0x0F, body)


def _decode(kind: int, flags: int, body: bytes) -> Incoming:
    if kind == PUBLISH:
        return _decode_publish(flags, body)
    if flags:
        raise MqttProtocolError(f"packet type {kind} with reserved flags {flags:#x}")
    if kind == CONNACK and len(body) == 2:
        if body[0] & 0xFE:
            raise MqttProtocolError(f"CONNACK with reserved acknowledge flags {body[0]:#x}")
        return ConnAck(bool(body[0] & 1), body[1])
    if kind == PUBACK and len(body) == 2:
        return PubAck(struct.unpack("!H", body)[0])
    if kind == PINGRESP and not body:
        return PingResp()
    raise MqttProtocolError(f"unexpected packet type {kind} ({len(body)} bytes) from the broker")


def _decode_publish(flags: int, body: bytes) -> Publish:
    qos = (flags >> 1) & 0x03
    if qos == 3:
        raise MqttProtocolError("PUBLISH with QoS 3")
    if len(body) < 2:
        raise MqttProtocolError("PUBLISH too short for its topic")
    (size,) = struct.unpack_from("!H", body)
    end = 2 + size + (2 if qos else 0)
    if len(body) < end:
        raise MqttProtocolError("PUBLISH too short for its topic and packet id")
    try:
        topic = body[2 : 2 + size].decode()
    except UnicodeDecodeError as error:
        raise MqttProtocolError(f"PUBLISH topic is not UTF-8: {error}") from None
    packet_id = struct.unpack_from("!H", body, 2 + size)[0] if qos else None
    return Publish(topic, body[end:], qos, bool(flags & 1), bool(flags & 8), packet_id)
