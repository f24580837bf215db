"""Modbus codec: hubgate's Rust codec through its Python binding against pymodbus.

Issue 3 cases, one group each, `impl` in (hubgate, pymodbus):
(a) encode an FC3 request and decode its 10-register response (target >= 10x);
(b) decode a 125-register response into 60 typed fields with word order and
    scale (target >= 30x; pymodbus: its decode plus `convert_from_registers`);
(c) CRC-16 over 256 bytes (target >= 20x).
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from typing import Any

import pytest
from pymodbus.client import ModbusTcpClient
from pymodbus.framer import FramerRTU, FramerSocket
from pymodbus.pdu import DecodePDU
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersRequest,
    ReadHoldingRegistersResponse,
)

from hubgate._core import Field, ReadPlan, Request, TcpClientCodec, crc16
from hubgate.benchmarking.codec_speed import LAYOUT

IMPLS = ["hubgate", "pymodbus"]
# Rounds of at least 100 µs, so that sub-microsecond calls are timed over many
# iterations rather than dominated by the timer's own overhead.
MIN_TIME = 0.0001
DATATYPE = ModbusTcpClient.DATATYPE


def fc3_responses(registers: list[int]) -> list[bytes]:
    """The FC3 response frame for unit 1, indexed by transaction id (hubgate's
    client numbers its requests itself)."""
    pdu = ReadHoldingRegistersResponse(registers=registers, dev_id=1, transaction_id=0)
    frame = FramerSocket(DecodePDU(True)).buildFrame(pdu)
    return [tid.to_bytes(2, "big") + frame[2:] for tid in range(0x10000)]


TEN = list(range(1000, 1010))
TEN_FRAMES = fc3_responses(TEN)


def roundtrip_hubgate() -> Callable[[], Any]:
    client = TcpClientCodec()
    encode, receive, next_event = client.encode_request, client.receive_data, client.next_event
    read, frames = Request.ReadHoldingRegisters, TEN_FRAMES

    def run() -> Any:
        tid, _frame = encode(1, read(40000, 10))
        receive(frames[tid])
        return next_event().response.registers  # type: ignore[union-attr]

    return run


def roundtrip_pymodbus() -> Callable[[], Any]:
    framer = FramerSocket(DecodePDU(False))
    build, handle, read, reply = (
        framer.buildFrame,
        framer.handleFrame,
        ReadHoldingRegistersRequest,
        TEN_FRAMES[7],
    )

    def run() -> Any:
        build(read(address=40000, count=10, dev_id=1, transaction_id=7))
        _, pdu = handle(reply, 1, 7)
        return pdu.registers

    return run


@pytest.mark.benchmark(group="modbus-fc3-request-and-10-register-response", min_time=MIN_TIME)
@pytest.mark.parametrize("impl", IMPLS)
def test_fc3_roundtrip(benchmark: Any, impl: str) -> None:
    run = roundtrip_hubgate() if impl == "hubgate" else roundtrip_pymodbus()
    assert benchmark(run) == TEN


# (b): 60 fields over 125 registers: 20 f32 in CDAB order, 20 i32 in ABCD
# with scale 0.1, 20 u16 with scale 0.01 and offset -40, spread over all 125 registers.
BASE = 40000
rng = random.Random(3)
REGISTERS = [rng.randrange(0x10000) for _ in range(125)]
for offset, *_ in LAYOUT[:20]:  # finite floats for a fair comparison
    low, high = struct.unpack(">HH", struct.pack(">f", rng.uniform(-1e4, 1e4)))
    REGISTERS[offset : offset + 2] = [high, low]  # CDAB: low word first
FRAME_125 = fc3_responses(REGISTERS)


def fields_hubgate() -> Callable[[], Any]:
    fields = [
        Field(BASE + offset, kind, order=order, scale=scale, offset=shift)
        for offset, kind, order, scale, shift in LAYOUT
    ]
    plan = ReadPlan(fields, max_gap=10)
    (request,) = plan.requests
    client = TcpClientCodec()
    encode, receive, next_event = client.encode_request, client.receive_data, client.next_event
    decode, frames = plan.decode, FRAME_125

    def run() -> Any:
        tid, _frame = encode(1, request)
        receive(frames[tid])
        return decode([next_event().response])  # type: ignore[union-attr]

    return run


def fields_pymodbus() -> Callable[[], Any]:
    framer = FramerSocket(DecodePDU(False))
    handle, reply = framer.handleFrame, FRAME_125[7]
    types = {"f32": DATATYPE.FLOAT32, "i32": DATATYPE.INT32, "u16": DATATYPE.UINT16}
    convert = ModbusTcpClient.convert_from_registers
    layout = [
        (
            offset,
            offset + types[kind].value[1],
            types[kind],
            "little" if order == "CDAB" else "big",
            scale,
            shift,
        )
        for offset, kind, order, scale, shift in LAYOUT
    ]

    def run() -> list[Any]:
        _, pdu = handle(reply, 1, 7)
        registers = pdu.registers
        values: list[Any] = []
        for start, end, datatype, word_order, scale, shift in layout:
            value = convert(registers[start:end], datatype, word_order=word_order)
            values.append(value if scale == 1.0 and shift == 0.0 else value * scale + shift)
        return values

    return run


@pytest.mark.benchmark(group="modbus-125-registers-into-60-fields", min_time=MIN_TIME)
@pytest.mark.parametrize("impl", IMPLS)
def test_decode_60_fields(benchmark: Any, impl: str) -> None:
    run = fields_hubgate() if impl == "hubgate" else fields_pymodbus()
    values = benchmark(run)
    expected = fields_pymodbus()()
    assert values == pytest.approx(expected, rel=1e-6)


DATA_256 = bytes(random.Random(5).randrange(256) for _ in range(256))


@pytest.mark.benchmark(group="crc16-256-bytes", min_time=MIN_TIME)
@pytest.mark.parametrize("impl", IMPLS)
def test_crc16(benchmark: Any, impl: str) -> None:
    if impl == "hubgate":
        crc = benchmark(crc16, DATA_256)
    else:
        swapped = benchmark(FramerRTU.compute_CRC, DATA_256)
        crc = ((swapped & 0xFF) << 8) | (swapped >> 8)  # pymodbus returns it byte-swapped
    assert crc == crc16(DATA_256)
