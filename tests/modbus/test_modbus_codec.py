"""The Modbus codec's Python API: events, streaming, errors, typed fields and read plans."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hubgate.errors import CodecError, EncodeError, FieldError, FrameError
from hubgate.modbus.codec import (
    Field,
    ReadPlan,
    Request,
    RequestReceived,
    RequestRejected,
    Response,
    ResponseReceived,
    ResponseRejected,
    RtuClientCodec,
    RtuServerCodec,
    TcpClientCodec,
    TcpServerCodec,
)

TEN = list(range(1000, 1010))


def test_golden_frames_of_protocols_md() -> None:
    client = TcpClientCodec()
    for _ in range(6):
        client.forget(client.encode_request(1, Request.ReadCoils(0, 1))[0])
    tid, frame = client.encode_request(1, Request.ReadHoldingRegisters(40000, 10))
    assert (tid, frame.hex(" ")) == (7, "00 07 00 00 00 06 01 03 9c 40 00 0a")
    _, rtu = RtuClientCodec().encode_request(1, Request.ReadHoldingRegisters(40000, 10))
    assert rtu.hex(" ") == "01 03 9c 40 00 0a ea 49"
    reply = RtuServerCodec.encode_response(0, 1, Response.ReadHoldingRegisters(TEN))
    assert reply.hex(" ").startswith("01 03 14 03 e8")
    assert reply.hex(" ").endswith("03 f1 c7 64")
    assert TcpServerCodec.encode_exception(9, 1, 3, 2).hex(" ") == "00 09 00 00 00 03 01 83 02"
    assert RtuServerCodec.encode_exception(0, 1, 3, 2).hex(" ") == "01 83 02 c0 f1"


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_response_fed_at_every_split_gives_one_event(kind: type) -> None:
    reply = TcpServerCodec.encode_response(1, 1, Response.ReadHoldingRegisters(TEN))
    for cut in range(len(reply) + 1):
        client = TcpClientCodec()
        client.encode_request(1, Request.ReadHoldingRegisters(40000, 10))
        events = []
        for part in (reply[:cut], reply[cut:]):
            client.receive_data(kind(part))
            while (event := client.next_event()) is not None:
                events.append(event)
        assert len(events) == 1
        (event,) = events
        assert isinstance(event, ResponseReceived)
        assert (event.transaction_id, event.unit) == (1, 1)
        match event.response:
            case Response.ReadHoldingRegisters(registers=registers):
                assert registers == TEN
            case other:
                pytest.fail(f"unexpected {other!r}")
        assert client.pending == 0


def test_exception_response_is_a_value() -> None:
    client = TcpClientCodec()
    tid, _ = client.encode_request(1, Request.ReadHoldingRegisters(0, 1))
    client.receive_data(TcpServerCodec.encode_exception(tid, 1, 3, 0x0B))
    event = client.next_event()
    assert isinstance(event, ResponseReceived)
    assert event.response == Response.Exception(3, 0x0B)
    assert event.response.is_exception
    assert event.response.function_code == 3


def test_mismatched_and_late_responses_are_rejected() -> None:
    client = TcpClientCodec()
    tid, _ = client.encode_request(1, Request.ReadHoldingRegisters(0, 10))
    client.receive_data(TcpServerCodec.encode_response(tid, 1, Response.ReadHoldingRegisters([1])))
    event = client.next_event()
    assert isinstance(event, ResponseRejected)
    assert event.transaction_id == tid
    assert "asked for 10" in event.reason
    assert client.pending == 0

    tid, _ = client.encode_request(1, Request.ReadHoldingRegisters(0, 1))
    assert client.forget(tid)
    client.receive_data(TcpServerCodec.encode_response(tid, 1, Response.ReadHoldingRegisters([1])))
    late = client.next_event()
    assert isinstance(late, ResponseRejected)
    assert late.transaction_id is None


def test_bad_mbap_header_raises_frame_error_every_time() -> None:
    server = TcpServerCodec()
    server.receive_data(bytes.fromhex("0001 0000 0000 01"))
    for _ in range(2):
        with pytest.raises(FrameError, match="length 0"):
            server.next_event()
    assert issubclass(FrameError, CodecError)
    assert issubclass(FrameError, ValueError)


def test_server_decodes_requests_and_rejects_bad_ones() -> None:
    _, good = TcpClientCodec().encode_request(
        17, Request.ReadWriteMultipleRegisters(1, 2, 3, [4, 5])
    )
    server = TcpServerCodec()
    server.receive_data(good + bytes.fromhex("0002 0000 0006 11 03 0000 007e"))
    first = server.next_event()
    assert isinstance(first, RequestReceived)
    assert (first.transaction_id, first.unit) == (1, 17)
    assert first.request == Request.ReadWriteMultipleRegisters(1, 2, 3, [4, 5])
    second = server.next_event()
    assert isinstance(second, RequestRejected)
    assert (second.transaction_id, second.function_code, second.exception_code) == (2, 3, 3)
    assert server.next_event() is None


def test_encode_limits_raise_and_leave_nothing_pending() -> None:
    client = TcpClientCodec()
    for request in [
        Request.ReadHoldingRegisters(0, 126),
        Request.WriteMultipleRegisters(0, [0] * 124),
        Request.WriteMultipleCoils(0, [True] * 1969),
        Request.ReadHoldingRegisters(65535, 2),
        Request.ReadDeviceIdentification(5, 0),
    ]:
        with pytest.raises(EncodeError):
            client.encode_request(1, request)
    assert client.pending == 0
    with pytest.raises(EncodeError):
        TcpServerCodec.encode_response(1, 1, Response.ReadHoldingRegisters([0] * 126))


def test_rtu_client_resynchronises_and_reports_a_garbled_response() -> None:
    reply = RtuServerCodec.encode_response(0, 1, Response.ReadHoldingRegisters(TEN))
    client = RtuClientCodec()
    tid, _ = client.encode_request(1, Request.ReadHoldingRegisters(40000, 10))
    client.receive_data(b"\x00\xff\x01\x03" + reply)
    event = client.next_event()
    assert isinstance(event, ResponseReceived)
    assert event.transaction_id == tid
    assert client.discarded == 4

    tid, _ = client.encode_request(1, Request.ReadHoldingRegisters(40000, 10))
    garbled = bytearray(reply)
    garbled[5] ^= 0x10
    client.receive_data(garbled)
    rejected = client.next_event()
    assert isinstance(rejected, ResponseRejected)
    assert rejected.transaction_id == tid
    assert "CRC" in rejected.reason
    assert client.pending == 0


def test_rtu_server_skips_bad_crc_frames() -> None:
    _, frame = RtuClientCodec().encode_request(3, Request.WriteSingleCoil(9, True))
    broken = bytearray(frame)
    broken[-1] ^= 0xFF
    server = RtuServerCodec()
    server.receive_data(bytes(broken) + frame)
    event = server.next_event()
    assert isinstance(event, RequestReceived)
    assert event.request == Request.WriteSingleCoil(9, True)
    assert server.next_event() is None


@given(st.floats(width=32, allow_nan=False), st.sampled_from(["ABCD", "CDAB", "BADC", "DCBA"]))
def test_float_word_orders_against_struct(value: float, order: str) -> None:
    big = struct.pack(">f", value)
    a, b, c, d = big
    wire = {"ABCD": [a, b, c, d], "CDAB": [c, d, a, b], "BADC": [b, a, d, c], "DCBA": [d, c, b, a]}
    octets = wire[order]
    registers = [octets[0] << 8 | octets[1], octets[2] << 8 | octets[3]]
    field = Field(0, "f32", order=order)  # type: ignore[arg-type]
    assert field.decode(registers) == value
    assert field.encode(value) == registers


@given(st.integers(-(2**63), 2**63 - 1))
def test_i64_round_trips_in_every_order(value: int) -> None:
    for order in ("ABCD", "CDAB", "BADC", "DCBA"):
        field = Field(0, "i64", order=order)  # type: ignore[arg-type]
        assert field.decode(field.encode(value)) == value


def test_sentinels_scale_strings_and_bits() -> None:
    assert Field(0, "u16", sentinel=True).decode([0xFFFF]) is None
    assert Field(0, "i16", sentinel=True).decode([0x8000]) is None
    assert Field(0, "u32", sentinel=True).decode([0xFFFF, 0xFFFF]) is None
    assert Field(0, "i32", sentinel=True).decode([0x8000, 0]) is None
    assert Field(0, "f32", sentinel=True).decode([0x7FC0, 0]) is None
    assert Field(0, "u16", sentinel=0x7FFF).decode([0x7FFF]) is None
    assert Field(0, "u16").decode([0xFFFF]) == 0xFFFF
    scaled = Field(0, "i16", scale=0.1, offset=-40.0)
    assert scaled.decode([650]) == pytest.approx(25.0)
    assert scaled.encode(25.0) == [650]
    assert Field(0, "u16", sentinel=[0x7FFE, 0x7FFF]).decode([0x7FFE]) is None
    assert Field(0, "string", count=3).decode([0x5375, 0x6E53, 0x2000]) == "SunS"
    assert Field(0, "string", count=2, sentinel=True).decode([0, 0]) is None
    utf16 = Field(0, "string", count=3, charset="utf-16-be")
    assert utf16.decode([0x41, 0xE9, 0]) == "Aé"
    assert utf16.encode("Aé") == [0x41, 0xE9, 0]
    assert Field(0, "bitfield", mask=1, shift=3).decode([0b1000]) == 1
    assert Field(0, "bitfield", count=2).decode([0x8001, 0x0002]) == 0x8001_0002
    assert Field(0, function=2, invert=True).decode([False]) is True
    sunspec = Field(0, "i16", scale_factor=1, offset=1.0)
    assert sunspec.decode([1234], exponent=-2) == pytest.approx(13.34)
    assert sunspec.encode(13.34, exponent=-2) == [1234]
    with pytest.raises(FieldError, match="exponent"):
        sunspec.decode([1234])
    assert math.isnan(Field(0, "f32").decode([0x7FC0, 0]))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((0, "u17"), {}),
        ((0, "string"), {}),
        ((0, "bitfield"), {"count": 5}),
        ((0, "u16"), {"order": "ACBD"}),
        ((0, "u16"), {"scale": 0.0}),
        ((0, "u16"), {"count": 2}),
        ((0, "string"), {"count": 2, "charset": "latin-1"}),
    ],
)
def test_bad_fields_raise_field_error(args: tuple[int, str], kwargs: dict[str, object]) -> None:
    with pytest.raises(FieldError):
        Field(*args, **kwargs)  # type: ignore[arg-type]


def test_read_plan_requests_and_decode() -> None:
    fields = [
        Field(40002, "i16", scale=0.1),
        Field(40000, "u32"),
        Field(40010, "f32", order="CDAB", function=4),
        Field(40005, "string", count=2, sentinel=True),
    ]
    plan = ReadPlan(fields, max_gap=3)
    assert plan.requests == [
        Request.ReadHoldingRegisters(40000, 7),
        Request.ReadInputRegisters(40010, 2),
    ]
    assert len(plan) == 4
    holding = Response.ReadHoldingRegisters([0, 7, 125, 0xFFFF, 0xFFFF, 0x4142, 0x4300])
    assert plan.decode([holding, [0x0000, 0x4049]]) == pytest.approx([12.5, 7, 3.140625, "ABC"])
    assert plan.decode([holding, None]) == pytest.approx([12.5, 7, None, "ABC"])
    with pytest.raises(FieldError):
        plan.decode([holding])
    with pytest.raises(FieldError):
        plan.decode([holding, [1, 2, 3]])


def test_read_plan_honours_device_quirks() -> None:
    fields = [Field(a, "u16") for a in (0, 2, 4, 6)]
    assert len(ReadPlan(fields, max_gap=1).requests) == 1
    assert len(ReadPlan(fields, max_gap=1, max_block=3).requests) == 2
    assert len(ReadPlan(fields, max_gap=1, forbidden=[(3, 3)]).requests) == 2
    single = ReadPlan([Field(0, "u32"), Field(1, "u16")], single_register=True)
    assert single.requests == [
        Request.ReadHoldingRegisters(0, 1),
        Request.ReadHoldingRegisters(1, 1),
    ]
    assert single.decode([[0x0001], [0x0002]]) == [0x00010002, 2]
    with pytest.raises(FieldError):
        ReadPlan([Field(3, "u16")], forbidden=[(3, 3)])


def test_read_plan_with_coils_and_a_shared_scale_factor() -> None:
    fields = [
        Field(40084, "i16", scale_factor=40085),
        Field(40083, "u16", scale_factor=40085),
        Field(7, function=1),
        Field(9, function=1, invert=True),
    ]
    plan = ReadPlan(fields, max_gap=1)
    assert plan.requests == [Request.ReadCoils(7, 3), Request.ReadHoldingRegisters(40083, 3)]
    coils = Response.ReadCoils([True, False, True])
    values = plan.decode([coils, Response.ReadHoldingRegisters([150, 1234, 0xFFFE])])
    assert values == pytest.approx([12.34, 1.5, True, False])
    missing = plan.decode([None, [150, 1234, 0x8000]])
    assert missing == [None, None, None, None]


def test_reprs_are_python_expressions() -> None:
    request = Request.ReadWriteMultipleRegisters(1, 2, 3, [4, 5])
    assert repr(request) == (
        "Request.ReadWriteMultipleRegisters(read_address=1, read_count=2, write_address=3, values=[4, 5])"
    )
    response = Response.ReadDeviceIdentification(1, 0x83, False, 0, [(0, b"a: b")])
    namespace = {"Request": Request, "Response": Response}
    assert eval(repr(request), namespace) == request
    assert eval(repr(response), namespace) == response
    server = TcpServerCodec()
    server.receive_data(bytes.fromhex("0001 0000 0006 01 03 0000 007e"))
    assert repr(server.next_event()) == (
        "RequestRejected(transaction_id=1, unit=1, function_code=3, exception_code=3,"
        " reason='FC3: quantity out of range')"
    )
    assert repr(Field(7, function=1, sentinel=[1])).startswith('Field(7, "u16", function=1,')
