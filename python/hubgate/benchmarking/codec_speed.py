"""Codec speed: the cases of bench/test_bench_codec.py, hubgate against pymodbus if installed.

(a) encode an FC3 request and decode its 10-register response; (b) decode a
125-register response into 60 typed fields (word order, scale, offset); (c)
CRC-16 over 256 bytes. The response frames come from hubgate's server codec.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from typing import Any

from hubgate._core import crc16
from hubgate.benchmarking.timing import Comparison
from hubgate.modbus.codec import (
    Field,
    ReadPlan,
    Request,
    Response,
    ResponseReceived,
    TcpClientCodec,
    TcpServerCodec,
    ValueType,
    WordOrder,
)

TimeCall = Callable[[Callable[[], object]], float]
"""Seconds per call of a function (the caller's rounds and round length)."""

BASE = 40000
TEN = list(range(1000, 1010))
LAYOUT: list[tuple[int, ValueType, WordOrder, float, float]] = (
    [(i * 2, "f32", "CDAB", 1.0, 0.0) for i in range(20)]
    + [(40 + i * 2, "i32", "ABCD", 0.1, 0.0) for i in range(20)]
    + [(86 + 2 * i, "u16", "ABCD", 0.01, -40.0) for i in range(20)]
)
"""60 fields over 125 registers: f32 CDAB, i32 ABCD scaled, u16 scaled with an offset."""


def _registers_125() -> list[int]:
    rng = random.Random(3)
    registers = [rng.randrange(0x10000) for _ in range(125)]
    for offset, *_ in LAYOUT[:20]:  # finite floats, as real meters send
        high, low = struct.unpack(">HH", struct.pack(">f", rng.uniform(-1e4, 1e4)))
        registers[offset : offset + 2] = [low, high]
    return registers


def _frames(registers: list[int]) -> list[bytes]:
    """The FC3 response of unit 1 for every transaction id (the client numbers requests)."""
    response = Response.ReadHoldingRegisters(registers)
    return [TcpServerCodec.encode_response(tid, 1, response) for tid in range(0x10000)]


def _next_response(client: TcpClientCodec) -> Response:
    event = client.next_event()
    assert isinstance(event, ResponseReceived)
    return event.response


def _roundtrip_hubgate(frames: list[bytes]) -> Callable[[], object]:
    client = TcpClientCodec()
    encode, receive, read = client.encode_request, client.receive_data, Request.ReadHoldingRegisters

    def run() -> object:
        tid, _frame = encode(1, read(BASE, 10))
        receive(frames[tid])
        return _next_response(client)

    return run


def _fields_hubgate(frames: list[bytes]) -> Callable[[], object]:
    plan = ReadPlan(
        [
            Field(BASE + offset, kind, order=order, scale=scale, offset=shift)
            for offset, kind, order, scale, shift in LAYOUT
        ],
        max_gap=10,
    )
    (request,) = plan.requests
    client = TcpClientCodec()

    def run() -> object:
        tid, _frame = client.encode_request(1, request)
        client.receive_data(frames[tid])
        return plan.decode([_next_response(client)])

    return run


def _pymodbus_peers(
    ten: bytes, full: bytes, data: bytes
) -> tuple[Callable[[], object], Callable[[], object], Callable[[], object]]:
    """The same three cases through pymodbus (raises ImportError when it is not installed)."""
    from pymodbus.client import ModbusTcpClient
    from pymodbus.framer import FramerRTU, FramerSocket
    from pymodbus.pdu import DecodePDU
    from pymodbus.pdu.register_message import ReadHoldingRegistersRequest

    framer = FramerSocket(DecodePDU(False))

    def roundtrip() -> object:
        framer.buildFrame(
            ReadHoldingRegistersRequest(address=BASE, count=10, dev_id=1, transaction_id=7)
        )
        pdu: Any = framer.handleFrame(ten, 1, 7)[1]
        return pdu.registers

    datatype = ModbusTcpClient.DATATYPE
    types = {"f32": datatype.FLOAT32, "i32": datatype.INT32, "u16": datatype.UINT16}
    convert: Any = ModbusTcpClient.convert_from_registers
    layout = [
        (o, o + types[k].value[1], types[k], "little" if w == "CDAB" else "big", s, f)
        for o, k, w, s, f in LAYOUT
    ]

    def fields() -> object:
        pdu: Any = framer.handleFrame(full, 1, 7)[1]
        registers = pdu.registers
        values: list[Any] = []
        for start, end, kind, word_order, scale, shift in layout:
            value = convert(registers[start:end], kind, word_order=word_order)
            values.append(value if scale == 1.0 and shift == 0.0 else value * scale + shift)
        return values

    return roundtrip, fields, lambda: FramerRTU.compute_CRC(data)


def measure_codec(time_call: TimeCall) -> dict[str, Comparison]:
    """The three codec cases, each hubgate and pymodbus (None where it is not installed)."""
    ten, full = _frames(TEN), _frames(_registers_125())
    data = bytes(random.Random(5).randrange(256) for _ in range(256))
    hubgate = {
        "fc3_request_and_10_register_response": _roundtrip_hubgate(ten),
        "decode_125_registers_into_60_fields": _fields_hubgate(full),
        "crc16_256_bytes": lambda: crc16(data),
    }
    try:
        peers: tuple[Callable[[], object], ...] | None = _pymodbus_peers(ten[7], full[7], data)
    except ImportError:
        peers = None
    return {
        case: Comparison(time_call(run), "pymodbus", None if peers is None else time_call(peers[i]))
        for i, (case, run) in enumerate(hubgate.items())
    }
