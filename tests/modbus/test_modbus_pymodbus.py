"""Differential tests: hubgate's Modbus codec against pymodbus's framers and PDU classes.

For every supported function code: the same bytes when encoding (requests and
responses, TCP and RTU), the same values when decoding frames pymodbus built,
and the same verdict on corrupted frames. Where pymodbus breaks the
specification (oversize FC16 frames), the difference is asserted explicitly.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymodbus.client import ModbusTcpClient
from pymodbus.exceptions import ModbusIOException
from pymodbus.framer import FramerRTU, FramerSocket
from pymodbus.pdu import DecodePDU, ExceptionResponse, ModbusPDU
from pymodbus.pdu import bit_message as bit
from pymodbus.pdu import mei_message as mei
from pymodbus.pdu import register_message as reg

from hubgate._core import (
    EncodeError,
    Field,
    FrameError,
    Request,
    RequestReceived,
    RequestRejected,
    Response,
    ResponseReceived,
    RtuClientCodec,
    RtuServerCodec,
    TcpClientCodec,
    TcpServerCodec,
)

units = st.integers(1, 247)
tids = st.integers(1, 0xFFFF)
words = st.integers(0, 0xFFFF)


def span(max_count: int) -> st.SearchStrategy[tuple[int, int]]:
    """An (address, count) pair inside the 16-bit address space."""
    return st.integers(1, max_count).flatmap(
        lambda n: st.tuples(st.integers(0, 0x10000 - n), st.just(n))
    )


@dataclass(frozen=True)
class Pair:
    """One request and its answer, in hubgate's and pymodbus's classes."""

    request: Request
    response: Response
    py_request: ModbusPDU
    py_response: ModbusPDU


def bits_of(n: int) -> st.SearchStrategy[list[bool]]:
    return st.lists(st.booleans(), min_size=n, max_size=n)


@st.composite
def pairs(draw: st.DrawFn) -> Pair:
    """A request/response pair of any supported function code."""
    fc = draw(st.sampled_from([1, 2, 3, 4, 5, 6, 15, 16, 23, 43]))
    if fc in (1, 2):
        address, count = draw(span(2000))
        values = draw(bits_of(count))
        padded = values + [False] * (-count % 8)
        req_cls, resp_cls = (
            (bit.ReadCoilsRequest, bit.ReadCoilsResponse)
            if fc == 1
            else (bit.ReadDiscreteInputsRequest, bit.ReadDiscreteInputsResponse)
        )
        ours = (
            (Request.ReadCoils, Response.ReadCoils)
            if fc == 1
            else (
                Request.ReadDiscreteInputs,
                Response.ReadDiscreteInputs,
            )
        )
        return Pair(
            ours[0](address, count),
            ours[1](values),
            req_cls(address=address, count=count),
            resp_cls(bits=padded),
        )
    if fc in (3, 4):
        address, count = draw(span(125))
        values = draw(st.lists(words, min_size=count, max_size=count))
        if fc == 3:
            return Pair(
                Request.ReadHoldingRegisters(address, count),
                Response.ReadHoldingRegisters(values),
                reg.ReadHoldingRegistersRequest(address=address, count=count),
                reg.ReadHoldingRegistersResponse(registers=values),
            )
        return Pair(
            Request.ReadInputRegisters(address, count),
            Response.ReadInputRegisters(values),
            reg.ReadInputRegistersRequest(address=address, count=count),
            reg.ReadInputRegistersResponse(registers=values),
        )
    if fc == 5:
        address, on = draw(words), draw(st.booleans())
        return Pair(
            Request.WriteSingleCoil(address, on),
            Response.WriteSingleCoil(address, on),
            bit.WriteSingleCoilRequest(address=address, bits=[on]),
            bit.WriteSingleCoilResponse(address=address, bits=[on]),
        )
    if fc == 6:
        address, value = draw(words), draw(words)
        return Pair(
            Request.WriteSingleRegister(address, value),
            Response.WriteSingleRegister(address, value),
            reg.WriteSingleRegisterRequest(address=address, registers=[value]),
            reg.WriteSingleRegisterResponse(address=address, registers=[value]),
        )
    if fc == 15:
        address, count = draw(span(1968))
        values = draw(bits_of(count))
        return Pair(
            Request.WriteMultipleCoils(address, values),
            Response.WriteMultipleCoils(address, count),
            bit.WriteMultipleCoilsRequest(address=address, bits=values),
            bit.WriteMultipleCoilsResponse(address=address, count=count),
        )
    if fc == 16:
        address, count = draw(span(123))
        values = draw(st.lists(words, min_size=count, max_size=count))
        return Pair(
            Request.WriteMultipleRegisters(address, values),
            Response.WriteMultipleRegisters(address, count),
            reg.WriteMultipleRegistersRequest(address=address, registers=values),
            reg.WriteMultipleRegistersResponse(address=address, count=count),
        )
    if fc == 23:
        read_address, read_count = draw(span(125))
        write_address, write_count = draw(span(121))
        written = draw(st.lists(words, min_size=write_count, max_size=write_count))
        read = draw(st.lists(words, min_size=read_count, max_size=read_count))
        return Pair(
            Request.ReadWriteMultipleRegisters(read_address, read_count, write_address, written),
            Response.ReadWriteMultipleRegisters(read),
            reg.ReadWriteMultipleRegistersRequest(
                read_address=read_address,
                read_count=read_count,
                write_address=write_address,
                write_registers=written,
            ),
            reg.ReadWriteMultipleRegistersResponse(registers=read),
        )
    read_code = draw(st.integers(1, 4))
    object_id = draw(st.integers(0, 255))
    objects = draw(
        st.dictionaries(st.integers(0, 255), st.binary(min_size=1, max_size=20), max_size=6)
    )
    return Pair(
        Request.ReadDeviceIdentification(read_code, object_id),
        # pymodbus always claims conformity 0x83 and sorts nothing: keep dict order.
        Response.ReadDeviceIdentification(read_code, 0x83, False, 0, list(objects.items())),
        mei.ReadDeviceInformationRequest(read_code=read_code, object_id=object_id),
        mei.ReadDeviceInformationResponse(read_code=read_code, information=objects),
    )


def py_tcp_frame(pdu: ModbusPDU, unit: int, tid: int, *, is_server: bool) -> bytes:
    # A fresh copy each time: pymodbus's FC43 response counts its objects
    # again on every encode.
    pdu = copy.deepcopy(pdu)
    pdu.dev_id, pdu.transaction_id = unit, tid
    return FramerSocket(DecodePDU(is_server)).buildFrame(pdu)


def py_rtu_frame(pdu: ModbusPDU, unit: int) -> bytes:
    pdu = copy.deepcopy(pdu)
    pdu.dev_id = unit
    return FramerRTU(DecodePDU(False)).buildFrame(pdu)


def client_at(tid: int) -> TcpClientCodec:
    """A TCP client codec whose next transaction id is `tid`."""
    client = TcpClientCodec()
    for _ in range(tid - 1):
        skipped, _ = client.encode_request(1, Request.ReadCoils(0, 1))
        client.forget(skipped)
    return client


@given(pairs(), units, st.integers(1, 40))
def test_request_bytes_match_pymodbus(pair: Pair, unit: int, tid: int) -> None:
    _, tcp = client_at(tid).encode_request(unit, pair.request)
    assert tcp == py_tcp_frame(pair.py_request, unit, tid, is_server=False)
    _, rtu = RtuClientCodec().encode_request(unit, pair.request)
    assert rtu == py_rtu_frame(pair.py_request, unit)


@given(pairs(), units, tids)
def test_response_bytes_match_pymodbus(pair: Pair, unit: int, tid: int) -> None:
    tcp = TcpServerCodec.encode_response(tid, unit, pair.response)
    assert tcp == py_tcp_frame(pair.py_response, unit, tid, is_server=True)
    assert RtuServerCodec.encode_response(0, unit, pair.response) == py_rtu_frame(
        pair.py_response, unit
    )


@given(pairs(), units, st.integers(1, 40))
def test_responses_pymodbus_built_decode_to_the_same_values(
    pair: Pair, unit: int, tid: int
) -> None:
    tcp_frame = py_tcp_frame(pair.py_response, unit, tid, is_server=True)
    _, py_pdu = FramerSocket(DecodePDU(False)).handleFrame(tcp_frame, unit, tid)
    assert py_pdu is not None
    client = client_at(tid)
    client.encode_request(unit, pair.request)
    client.receive_data(tcp_frame)
    event = client.next_event()
    assert isinstance(event, ResponseReceived)
    assert event.response == pair.response
    assert_same_values(event.response, py_pdu)

    rtu = RtuClientCodec()
    rtu.encode_request(unit, pair.request)
    rtu.receive_data(py_rtu_frame(pair.py_response, unit))
    rtu_event = rtu.next_event()
    assert isinstance(rtu_event, ResponseReceived)
    assert rtu_event.response == pair.response


@given(pairs(), units, tids)
def test_requests_pymodbus_built_decode_to_the_same_values(pair: Pair, unit: int, tid: int) -> None:
    tcp_frame = py_tcp_frame(pair.py_request, unit, tid, is_server=False)
    _, py_pdu = FramerSocket(DecodePDU(True)).handleFrame(tcp_frame, unit, tid)
    assert py_pdu is not None
    server = TcpServerCodec()
    server.receive_data(tcp_frame)
    event = server.next_event()
    assert event == _received(tid, unit, pair.request)
    server_rtu = RtuServerCodec()
    server_rtu.receive_data(py_rtu_frame(pair.py_request, unit))
    assert server_rtu.next_event() == _received(0, unit, pair.request)


def _received(tid: int, unit: int, request: Request) -> RequestReceived:
    """The event a server codec yields for `request` (built by a real round trip)."""
    server = TcpServerCodec()
    _, frame = client_at(max(tid, 1)).encode_request(unit, request)
    frame = tid.to_bytes(2, "big") + frame[2:]
    server.receive_data(frame)
    event = server.next_event()
    assert isinstance(event, RequestReceived)
    return event


def assert_same_values(ours: Response, theirs: ModbusPDU) -> None:
    """Our decoded response carries what pymodbus decoded."""
    match ours:
        case Response.ReadCoils(bits=values) | Response.ReadDiscreteInputs(bits=values):
            assert list(theirs.bits[: len(values)]) == values
        case (
            Response.ReadHoldingRegisters(registers=values)
            | Response.ReadInputRegisters(registers=values)
            | Response.ReadWriteMultipleRegisters(registers=values)
        ):
            assert list(theirs.registers) == values
        case Response.WriteSingleCoil(address=address, value=value):
            assert (theirs.address, theirs.bits[0]) == (address, value)
        case Response.WriteSingleRegister(address=address, value=value):
            assert (theirs.address, theirs.registers[0]) == (address, value)
        case Response.WriteMultipleCoils(address=address, count=count) | (
            Response.WriteMultipleRegisters(address=address, count=count)
        ):
            assert (theirs.address, theirs.count) == (address, count)
        case Response.ReadDeviceIdentification(read_code=code, objects=objects):
            assert theirs.read_code == code
            assert theirs.information == dict(objects)
        case _:
            pytest.fail(f"unexpected {ours!r}")


@given(st.integers(1, 127).filter(lambda f: f not in (8, 20, 21, 22, 24, 43)), st.integers(1, 11))
def test_exception_responses_match_pymodbus(function: int, code: int) -> None:
    theirs = ExceptionResponse(function, code, device_id=1, transaction=9)
    frame = FramerSocket(DecodePDU(False)).buildFrame(theirs)
    assert TcpServerCodec.encode_exception(9, 1, function, code) == frame
    rtu_frame = FramerRTU(DecodePDU(False)).buildFrame(theirs)
    assert RtuServerCodec.encode_exception(0, 1, function, code) == rtu_frame


@given(pairs(), units, st.data())
def test_corrupted_rtu_frames_get_the_same_verdict(
    pair: Pair, unit: int, data: st.DataObject
) -> None:
    """A flipped bit anywhere: pymodbus finds no PDU, and neither do we."""
    frame = bytearray(py_rtu_frame(pair.py_response, unit))
    at = data.draw(st.integers(0, len(frame) - 1))
    frame[at] ^= 1 << data.draw(st.integers(0, 7))
    _, py_pdu = FramerRTU(DecodePDU(False)).handleFrame(bytes(frame), unit, 0)
    client = RtuClientCodec()
    client.encode_request(unit, pair.request)
    client.receive_data(frame)
    event = client.next_event()
    assert py_pdu is None
    assert not isinstance(event, ResponseReceived)


@given(pairs(), units, st.data())
def test_truncated_frames_wait_for_more_in_both(pair: Pair, unit: int, data: st.DataObject) -> None:
    frame = py_tcp_frame(pair.py_response, unit, 1, is_server=True)
    cut = data.draw(st.integers(0, len(frame) - 1))
    used, py_pdu = FramerSocket(DecodePDU(False)).handleFrame(frame[:cut], unit, 1)
    client = TcpClientCodec()
    client.encode_request(unit, pair.request)
    client.receive_data(frame[:cut])
    assert (used, py_pdu) == (0, None)
    assert client.next_event() is None


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(bytes.fromhex("0001 0001 0006 01"), id="protocol-id"),
        pytest.param(bytes.fromhex("0001 0000 0000 01"), id="length-0"),
        pytest.param(bytes.fromhex("0001 0000 0100 01"), id="length-256"),
    ],
)
def test_bad_mbap_header_is_never_a_frame(header: bytes) -> None:
    """pymodbus finds no PDU (it stalls or raises); hubgate closes the stream."""
    frame = header + bytes(300)
    try:
        _, py_pdu = FramerSocket(DecodePDU(False)).handleFrame(frame, 0, 0)
    except ModbusIOException:
        py_pdu = None
    assert py_pdu is None
    client = TcpClientCodec()
    client.encode_request(1, Request.ReadHoldingRegisters(0, 1))
    client.receive_data(frame)
    with pytest.raises(FrameError):
        client.next_event()


ENCODE_OVER_LIMIT: list[tuple[Callable[[], Request], Callable[[], ModbusPDU]]] = [
    (
        lambda: Request.WriteMultipleRegisters(0, [0] * 124),
        lambda: reg.WriteMultipleRegistersRequest(address=0, registers=[0] * 124),
    ),
    (
        lambda: Request.WriteMultipleRegisters(0, [0] * 127),
        lambda: reg.WriteMultipleRegistersRequest(address=0, registers=[0] * 127),
    ),
]


@pytest.mark.parametrize(("ours", "theirs"), ENCODE_OVER_LIMIT)
def test_oversize_fc16_is_refused_where_pymodbus_sends_it(
    ours: Callable[[], Request], theirs: Callable[[], ModbusPDU]
) -> None:
    py_frame = FramerSocket(DecodePDU(False)).buildFrame(theirs())
    assert len(py_frame) > 7 + 1 + 5 + 2 * 123  # pymodbus built an out-of-spec frame
    with pytest.raises(EncodeError):
        TcpClientCodec().encode_request(1, ours())


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (
            lambda: Request.ReadHoldingRegisters(0, 126),
            lambda: reg.ReadHoldingRegistersRequest(address=0, count=126),
        ),
        (lambda: Request.ReadCoils(0, 2001), lambda: bit.ReadCoilsRequest(address=0, count=2001)),
        (
            lambda: Request.ReadInputRegisters(0, 0),
            lambda: reg.ReadInputRegistersRequest(address=0, count=0),
        ),
    ],
)
def test_read_limits_are_refused_by_both(
    ours: Callable[[], Request], theirs: Callable[[], ModbusPDU]
) -> None:
    with pytest.raises(Exception, match=r"(?i)count|quantity"):
        FramerSocket(DecodePDU(False)).buildFrame(theirs())
    with pytest.raises(EncodeError):
        TcpClientCodec().encode_request(1, ours())


@given(pairs())
def test_server_answers_out_of_range_quantities_like_pymodbus(pair: Pair) -> None:
    """A request whose quantity field is zeroed: both sides refuse to decode it.

    FC16 is left out: pymodbus decodes it and refuses the count only later, in
    its datastore.
    """
    frame = bytearray(py_tcp_frame(pair.py_request, 1, 1, is_server=False))
    fc = frame[7]
    if fc not in (1, 2, 3, 4, 15, 23):
        return
    frame[10:12] = b"\x00\x00"
    server = TcpServerCodec()
    server.receive_data(bytes(frame))
    event = server.next_event()
    assert isinstance(event, RequestRejected)
    assert (event.function_code, event.exception_code) == (fc, 3)
    try:
        _, py_pdu = FramerSocket(DecodePDU(True)).handleFrame(bytes(frame), 1, 1)
    except ModbusIOException:
        py_pdu = None
    assert py_pdu is None


CONVERTIBLE = {
    "u16": ModbusTcpClient.DATATYPE.UINT16,
    "i16": ModbusTcpClient.DATATYPE.INT16,
    "u32": ModbusTcpClient.DATATYPE.UINT32,
    "i32": ModbusTcpClient.DATATYPE.INT32,
    "u64": ModbusTcpClient.DATATYPE.UINT64,
    "i64": ModbusTcpClient.DATATYPE.INT64,
    "f32": ModbusTcpClient.DATATYPE.FLOAT32,
    "f64": ModbusTcpClient.DATATYPE.FLOAT64,
}


@given(st.sampled_from(sorted(CONVERTIBLE)), st.sampled_from(["ABCD", "CDAB"]), st.data())
def test_values_match_convert_from_registers(kind: str, order: str, data: st.DataObject) -> None:
    """pymodbus's word orders are ABCD ("big") and CDAB ("little"); BADC and DCBA
    have no pymodbus counterpart and are checked against `struct` elsewhere."""
    datatype = CONVERTIBLE[kind]
    registers = data.draw(st.lists(words, min_size=datatype.value[1], max_size=datatype.value[1]))
    field = Field(0, kind, order=order)  # type: ignore[arg-type]
    theirs = ModbusTcpClient.convert_from_registers(
        registers, datatype, word_order="big" if order == "ABCD" else "little"
    )
    ours = field.decode(registers)
    if isinstance(theirs, float) and math.isnan(theirs):
        assert isinstance(ours, float)
        assert math.isnan(ours)
    else:
        assert ours == theirs
        assert type(ours) is type(theirs)
    if not (isinstance(theirs, float) and math.isnan(theirs)):
        assert ModbusTcpClient.convert_to_registers(
            theirs, datatype, word_order="big" if order == "ABCD" else "little"
        ) == field.encode(ours)  # type: ignore[arg-type]


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20))
def test_strings_match_convert_from_registers(text: str) -> None:
    registers = ModbusTcpClient.convert_to_registers(text, ModbusTcpClient.DATATYPE.STRING)
    if not registers:
        return
    field = Field(0, "string", count=len(registers))
    assert field.decode(registers) == text.rstrip(" ")
    assert field.encode(text) == registers
