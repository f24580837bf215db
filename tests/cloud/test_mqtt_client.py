"""The sans-IO MQTT 3.1.1 codec and client, and the outbox drop policy."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hubgate.cloud.mqtt.client import (
    Connected,
    ConnectionLost,
    Delivered,
    MqttClient,
    Received,
    Refused,
    State,
)
from hubgate.cloud.mqtt.outbox import Kind, Message, Outbox
from hubgate.cloud.mqtt.packets import (
    ConnAck,
    MqttProtocolError,
    PacketDecoder,
    Publish,
    Will,
    encode_connect,
    encode_publish,
)
from hubgate.cloud.mqtt.topics import Topics

CONNACK_OK = bytes([0x20, 2, 0, 0])


def decode_all(data: bytes) -> list[object]:
    decoder = PacketDecoder()
    decoder.feed(data)
    out = []
    while (packet := decoder.next_packet()) is not None:
        out.append(packet)
    return out


def test_connect_bytes_match_the_spec_layout() -> None:
    packet = encode_connect(
        "gw",
        keepalive_s=60,
        clean_session=False,
        will=Will("h/s/status", b"offline", qos=1, retain=True),
        username="u",
        password="p",
    )
    body = (
        b"\x00\x04MQTT\x04"
        + bytes([0x80 | 0x40 | 0x20 | 0x08 | 0x04])  # user, password, will retain, QoS 1, will
        + b"\x00\x3c"
        + b"\x00\x02gw"
        + b"\x00\x0ah/s/status\x00\x07offline"
        + b"\x00\x01u\x00\x01p"
    )
    assert packet == bytes([0x10, len(body)]) + body


@pytest.mark.parametrize(
    ("size", "length_bytes"), [(0, 1), (127, 1), (128, 2), (16_383, 2), (16_384, 3), (2_097_152, 4)]
)
def test_remaining_length_boundaries(size: int, length_bytes: int) -> None:
    # topic "t" (2 + 1 bytes) and packet id (2 bytes) come before the payload
    message = Publish("t", b"x" * (size - 5) if size >= 5 else b"", 1, packet_id=7)
    encoded = encode_publish(message)
    body = max(size, 5)
    assert len(encoded) == 1 + length_bytes + body
    assert decode_all(encoded) == [message]


@given(
    topic=st.text(st.characters(exclude_characters="+#\0", exclude_categories=("Cs",)), min_size=1),
    payload=st.binary(max_size=300),
    qos=st.sampled_from([0, 1]),
    retain=st.booleans(),
    dup=st.booleans(),
    packet_id=st.integers(1, 0xFFFF),
    cut=st.integers(0, 400),
)
def test_publish_roundtrips_in_any_chunking(
    topic: str, payload: bytes, qos: int, retain: bool, dup: bool, packet_id: int, cut: int
) -> None:
    message = Publish(topic, payload, qos, retain, dup, packet_id if qos else None)
    encoded = encode_publish(message) + CONNACK_OK
    decoder = PacketDecoder()
    decoder.feed(encoded[: cut % (len(encoded) + 1)])
    first = decoder.next_packet()
    decoder.feed(encoded[cut % (len(encoded) + 1) :])
    packets = [p for p in (first, decoder.next_packet(), decoder.next_packet()) if p is not None]
    assert packets == [message, ConnAck(False, 0)]


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (bytes([0x20, 2, 0x02, 0]), "reserved acknowledge flags"),
        (bytes([0x21, 2, 0, 0]), "reserved flags"),
        (bytes([0x90, 3, 0, 1, 0]), "unexpected packet type 9"),
        (bytes([0x36, 3, 0, 1, 0x41]), "QoS 3"),
        (bytes([0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]), "longer than four bytes"),
        (bytes([0x32, 3, 0, 1, 0x41]), "too short"),
    ],
)
def test_malformed_packets_are_protocol_errors(data: bytes, problem: str) -> None:
    with pytest.raises(MqttProtocolError, match=problem):
        decode_all(data)


@pytest.mark.parametrize(
    "message",
    [
        Publish("a/+/b", b""),
        Publish("", b""),
        Publish("t", b"", 2, packet_id=1),
        Publish("t", b"", 1),
    ],
)
def test_unencodable_publish_is_refused(message: Publish) -> None:
    with pytest.raises(MqttProtocolError):
        encode_publish(message)


def connected_client(keepalive_s: int = 10) -> MqttClient:
    client = MqttClient("gw", keepalive_s=keepalive_s)
    client.connect(now=0)
    assert client.data_to_send()[0] == 0x10
    client.receive_data(CONNACK_OK, now=0)
    assert client.next_event() == Connected(False)
    return client


def test_qos1_is_acknowledged_and_resent_with_dup_after_reconnect() -> None:
    client = connected_client()
    first = client.publish("s/a", b"1", now=1)
    second = client.publish("s/b", b"2", now=1)
    assert (first, second) == (1, 2)
    sent = decode_all(client.data_to_send())
    assert sent == [Publish("s/a", b"1", 1, packet_id=1), Publish("s/b", b"2", 1, packet_id=2)]
    client.receive_data(bytes([0x40, 2, 0, 1]), now=2)
    assert client.next_event() == Delivered(1)
    assert client.unacknowledged == 1

    client.receive_data(b"", now=3)
    assert client.next_event() == ConnectionLost("the broker closed the connection")
    with pytest.raises(MqttProtocolError):
        client.publish("s/c", b"3", now=3)
    client.connect(now=4)
    assert client.data_to_send()[0] == 0x10
    client.receive_data(bytes([0x20, 2, 1, 0]), now=4)
    assert client.next_event() == Connected(True)
    assert decode_all(client.data_to_send()) == [Publish("s/b", b"2", 1, dup=True, packet_id=2)]
    assert client.publish("s/q0", b"", qos=0, now=5) is None


def test_packet_ids_skip_those_still_in_flight() -> None:
    client = connected_client()
    for _ in range(0xFFFF):
        client.publish("t", b"", now=0)
    with pytest.raises(MqttProtocolError, match="65535"):
        client.publish("t", b"", now=0)
    client.receive_data(bytes([0x40, 2, 0x12, 0x34]), now=0)
    assert client.publish("t", b"", now=0) == 0x1234


def test_keepalive_pings_then_gives_up() -> None:
    client = connected_client(keepalive_s=10)
    assert client.next_deadline() == 10
    client.handle_timers(now=9)
    assert client.data_to_send() == b""
    client.handle_timers(now=10)
    assert client.data_to_send() == bytes([0xC0, 0])
    client.receive_data(bytes([0xD0, 0]), now=11)
    assert client.next_deadline() == 20
    client.handle_timers(now=20)
    assert client.data_to_send() == bytes([0xC0, 0])
    client.handle_timers(now=30)
    assert client.next_event() == ConnectionLost("no answer from the broker within 10 s")
    assert client.state is State.CLOSED


def test_refused_and_out_of_order_packets() -> None:
    client = MqttClient("gw")
    client.connect(now=0)
    with pytest.raises(MqttProtocolError, match="before CONNACK"):
        client.receive_data(bytes([0x40, 2, 0, 1]), now=0)
    client.connect(now=0)
    client.receive_data(bytes([0x20, 2, 0, 5]), now=0)
    assert client.next_event() == Refused(5)
    assert client.state is State.CLOSED


def test_received_qos1_is_acknowledged() -> None:
    client = connected_client()
    client.receive_data(encode_publish(Publish("x", b"y", 1, packet_id=9)), now=1)
    assert client.next_event() == Received(Publish("x", b"y", 1, packet_id=9))
    assert client.data_to_send() == bytes([0x40, 2, 0, 9])


def test_password_needs_username() -> None:
    with pytest.raises(MqttProtocolError):
        MqttClient("gw", password="secret")


def m(kind: Kind, n: int) -> Message:
    return Message("t", str(n).encode(), kind)


def test_outbox_drops_oldest_measurement_first_then_oldest_event() -> None:
    box = Outbox(3)
    box.put(m(Kind.EVENT, 1))
    box.put(m(Kind.MEASUREMENT, 2))
    box.put(m(Kind.MEASUREMENT, 3))
    box.put(m(Kind.EVENT, 4))  # full: measurement 2 goes
    box.put(m(Kind.MEASUREMENT, 5))  # measurement 3 goes
    assert (box.dropped_measurements, box.dropped_events) == (2, 0)
    box.put(m(Kind.EVENT, 6))  # measurement 5 goes
    box.put(m(Kind.EVENT, 7))  # only events left: the oldest event goes
    assert (box.dropped_measurements, box.dropped_events) == (3, 1)
    assert [box.pop().payload for _ in range(len(box))] == [b"4", b"6", b"7"]
    assert box.peek() is None


def test_topics() -> None:
    topics = Topics("fleet/eu", "depot-7")
    assert topics.status == "fleet/eu/depot-7/status"
    assert topics.connector("cp-1", 2, "current_a") == "fleet/eu/depot-7/connector/cp-1/2/current_a"
    assert topics.node("feeder-1", "power_kw") == "fleet/eu/depot-7/node/feeder-1/power_kw"
    assert topics.site("power_kw") == "fleet/eu/depot-7/site/power_kw"
    assert topics.event == "fleet/eu/depot-7/event"
    with pytest.raises(ValueError, match="topic level"):
        topics.node("a/b", "x")
