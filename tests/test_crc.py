"""CRC-16/MODBUS through the extension, against a bit-by-bit Python reference."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hubgate import _core
from hubgate.errors import CodecError, CrcError, HubgateError


def reference_crc16(data: bytes) -> int:
    """The CRC computed bit by bit, as the Modbus spec describes it."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def test_check_value() -> None:
    assert _core.crc16(b"123456789") == 0x4B37


def test_golden_rtu_request_checks() -> None:
    _core.check_crc(bytes.fromhex("01030000000AC5CD"))


@given(st.binary(max_size=300))
def test_matches_bitwise_reference(data: bytes) -> None:
    assert _core.crc16(data) == reference_crc16(data)


def test_mismatch_raises_crc_error_with_both_values() -> None:
    with pytest.raises(CrcError, match=r"0xCDC4.*0xCDC5"):
        _core.check_crc(bytes.fromhex("01030000000AC4CD"))


def test_error_hierarchy() -> None:
    assert issubclass(CrcError, CodecError)
    assert issubclass(CodecError, HubgateError)
    assert issubclass(CodecError, ValueError)
    with pytest.raises(ValueError, match="too short"):
        _core.check_crc(b"\x01\x02")
