"""`hubgate._core` answers an integer that does not fit its field with its own errors
(`CodecError`, `TopologyError`: both `ValueError`s naming the value and the range), never
with PyO3's `OverflowError` (issue 19, item 12)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hubgate._core import (
    Allocator,
    AllocConnector,
    AllocNode,
    AllocSettings,
    CodecError,
    Field,
    ReadPlan,
    Request,
    Response,
    RtuServerCodec,
    TcpClientCodec,
    TcpServerCodec,
    TopologyError,
)

U8 = (0, 0xFF)
U16 = (0, 0xFFFF)


def outside(low: int, high: int) -> st.SearchStrategy[int]:
    """Integers just outside [low, high] and far outside (beyond 64 and 128 bits)."""
    return st.one_of(
        st.integers(max_value=low - 1),
        st.integers(min_value=high + 1),
        st.sampled_from([low - 1, high + 1, 2**64, -(2**63) - 1, 10**40, -(10**40)]),
    )


CODEC_CALLS: dict[str, tuple[tuple[int, int], Callable[[int], object]]] = {
    "request address": (U16, lambda v: Request.ReadHoldingRegisters(v, 1)),
    "request count": (U16, lambda v: Request.ReadInputRegisters(0, v)),
    "register value": (U16, lambda v: Request.WriteSingleRegister(1, v)),
    "register values": (U16, lambda v: Request.WriteMultipleRegisters(1, [1, v])),
    "device id object": (U8, lambda v: Request.ReadDeviceIdentification(1, v)),
    "response registers": (U16, lambda v: Response.ReadHoldingRegisters([v])),
    "exception code": (U8, lambda v: Response.Exception(3, v)),
    "tcp unit": (U8, lambda v: TcpClientCodec().encode_request(v, Request.ReadCoils(0, 1))),
    "transaction id": (U16, lambda v: TcpServerCodec.encode_exception(v, 1, 3, 2)),
    "exception function": (U8, lambda v: RtuServerCodec.encode_exception(0, 1, v, 1)),
    "forget": (U16, lambda v: TcpClientCodec().forget(v)),
    "field address": (U16, lambda v: Field(v, "u16")),
    "field function": (U8, lambda v: Field(0, "u16", function=v)),
    "field decode": (U16, lambda v: Field(0, "u16").decode([v])),
    "plan gap": (U16, lambda v: ReadPlan([Field(0, "u16")], max_gap=v)),
    "plan forbidden": (U16, lambda v: ReadPlan([Field(0, "u16")], forbidden=[(0, v)])),
}


@pytest.mark.parametrize("name", sorted(CODEC_CALLS))
@given(data=st.data())
def test_out_of_range_codec_integers_raise_codec_error(name: str, data: st.DataObject) -> None:
    (low, high), call = CODEC_CALLS[name]
    value = data.draw(outside(low, high))
    with pytest.raises(CodecError, match=rf"out of range for u\d+ \({low} to {high}\)"):
        call(value)


def test_in_range_values_still_work() -> None:
    assert Request.ReadHoldingRegisters(0xFFFF, 1).address == 0xFFFF
    assert Response.ReadHoldingRegisters([0, 0xFFFF]).registers == [0, 0xFFFF]
    assert Field(0, "u16").decode([0xFFFF]) == 0xFFFF


def test_a_wrong_type_is_still_a_type_error() -> None:
    with pytest.raises(TypeError):
        Request.ReadHoldingRegisters("7", 1)  # type: ignore[arg-type]


def test_out_of_range_allocator_integers_raise_topology_error() -> None:
    node = AllocNode(None, (32.0, 32.0, 32.0))
    with pytest.raises(TopologyError, match="out of range for usize"):
        AllocNode(-1, (32.0, 32.0, 32.0))
    with pytest.raises(TopologyError, match="out of range for u8"):
        AllocConnector(0, "3p", 0, 6.0, 16.0, priority=256)
    with pytest.raises(TopologyError, match="out of range for u32"):
        AllocSettings(max_phase_switches=-1)
    allocator = Allocator([node], [AllocConnector(0, "3p", 0, 6.0, 16.0)], AllocSettings())
    with pytest.raises(TopologyError, match="out of range for usize"):
        allocator.set_priority(-1, 0)
    with pytest.raises(TopologyError, match="out of range for u8"):
        allocator.set_priority(0, 300)
