"""Register encoding with pymodbus's own conversions: a peer of the Rust codec.

The simulated devices encode with this module; hubgate's own decoder (Rust)
is tested against what they serve, so the two never share code.
"""

from __future__ import annotations

from pymodbus.client.mixin import ModbusClientMixin

from hubgate.profiles.model import DataType, WordOrder
from hubgate.profiles.plan import RegisterSpec

Raw = int | float | str

_PYMODBUS = ModbusClientMixin.DATATYPE
_TYPES = {
    DataType.U16: _PYMODBUS.UINT16,
    DataType.I16: _PYMODBUS.INT16,
    DataType.U32: _PYMODBUS.UINT32,
    DataType.I32: _PYMODBUS.INT32,
    DataType.U64: _PYMODBUS.UINT64,
    DataType.I64: _PYMODBUS.INT64,
    DataType.F32: _PYMODBUS.FLOAT32,
    DataType.F64: _PYMODBUS.FLOAT64,
}
_INT_TYPES = {DataType.U16, DataType.I16, DataType.U32, DataType.I32, DataType.U64, DataType.I64}


def _swap_bytes(registers: list[int]) -> list[int]:
    return [((r & 0xFF) << 8) | (r >> 8) for r in registers]


def reorder(order: WordOrder, registers: list[int]) -> list[int]:
    """Registers in ABCD order to `order` and back (each order is its own inverse)."""
    if order in (WordOrder.CDAB, WordOrder.DCBA):
        registers = list(reversed(registers))
    if order in (WordOrder.BADC, WordOrder.DCBA):
        registers = _swap_bytes(registers)
    return registers


def is_integer(spec: RegisterSpec) -> bool:
    """Whether raw values of `spec` are integers (they are rounded when encoded)."""
    return spec.type in _INT_TYPES or spec.type is DataType.BITFIELD


def encode_raw(spec: RegisterSpec, raw: Raw) -> list[int]:
    """The wire registers of a raw value."""
    if spec.type is DataType.STRING:
        text = ModbusClientMixin.convert_to_registers(
            str(raw), _PYMODBUS.STRING, string_encoding=spec.charset
        )
        registers = (text + [0] * spec.count)[: spec.count]
    elif spec.type is DataType.BITFIELD:
        value = int(raw)
        registers = [(value >> (16 * i)) & 0xFFFF for i in reversed(range(spec.count))]
    else:
        number: int | float = int(raw) if spec.type in _INT_TYPES else float(raw)
        registers = ModbusClientMixin.convert_to_registers(number, _TYPES[spec.type])
    return reorder(spec.order, registers)


def decode_raw(spec: RegisterSpec, registers: list[int]) -> Raw:
    """The raw value of wire registers."""
    logical = reorder(spec.order, list(registers))
    if spec.type is DataType.STRING:
        text = ModbusClientMixin.convert_from_registers(
            logical, _PYMODBUS.STRING, string_encoding=spec.charset
        )
        return str(text).strip("\x00 ")
    if spec.type is DataType.BITFIELD:
        return unsigned(spec, registers)
    value = ModbusClientMixin.convert_from_registers(logical, _TYPES[spec.type])
    assert isinstance(value, int | float)
    return value


def unsigned(spec: RegisterSpec, registers: list[int]) -> int:
    """The registers as one unsigned integer, most significant word first (for sentinels)."""
    value = 0
    for register in reorder(spec.order, list(registers)):
        value = (value << 16) | register
    return value


def to_physical(spec: RegisterSpec, raw: Raw, exponent: int = 0) -> float | str | None:
    """Raw to physical: mask and shift, scale, SunSpec exponent, offset."""
    if isinstance(raw, str):
        return raw
    if spec.mask is not None or spec.shift:
        raw = (int(raw) >> spec.shift) & (spec.mask if spec.mask is not None else -1)
    return raw * spec.scale * 10.0**exponent + spec.offset


def from_physical(spec: RegisterSpec, value: float | str, exponent: int = 0) -> Raw:
    """Physical to raw: the inverse of `to_physical` (rounded for integer types)."""
    if isinstance(value, str):
        return value
    raw: float = (value - spec.offset) / (spec.scale * 10.0**exponent)
    if not is_integer(spec):
        return raw
    whole = round(raw)
    if spec.mask is not None or spec.shift:
        whole = (whole & (spec.mask if spec.mask is not None else -1)) << spec.shift
    return whole
