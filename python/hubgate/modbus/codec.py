"""The Modbus codec of hubgate's Rust core, sans-IO (h11 style).

A client codec turns requests into frames and received bytes into events::

    codec = TcpClientCodec()            # or RtuClientCodec() for serial / RTU over TCP
    tid, frame = codec.encode_request(1, Request.ReadHoldingRegisters(40000, 10))
    await stream.send_all(frame)
    codec.receive_data(await stream.receive_some())
    while (event := codec.next_event()) is not None:
        ...  # ResponseReceived (matched to its request) or ResponseRejected

A server codec does the reverse (`RequestReceived` / `RequestRejected` events,
`encode_response`, `encode_exception`). A `ReadPlan` compiles `Field`s into the
fewest read requests and decodes all fields from their responses in one call.
Bad input raises subclasses of `CodecError` (`FrameError`, `EncodeError`,
`FieldError`); a Modbus exception response is a value, `Response.Exception`.
"""

from typing import Literal, TypeAlias

from hubgate._core import (
    EncodeError,
    Field,
    FieldError,
    FrameError,
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

ClientEvent: TypeAlias = ResponseReceived | ResponseRejected
"""What a client codec's `next_event` returns (besides `None`)."""
ServerEvent: TypeAlias = RequestReceived | RequestRejected
"""What a server codec's `next_event` returns (besides `None`)."""
FieldValue: TypeAlias = int | float | bool | str | None
"""A decoded field; `None` is "not available"."""
ValueType: TypeAlias = Literal[
    "u16",
    "i16",
    "u32",
    "i32",
    "u64",
    "i64",
    "f32",
    "f64",
    "bitfield",
    "string",
]
"""Type names a `Field` takes."""
WordOrder: TypeAlias = Literal["ABCD", "CDAB", "BADC", "DCBA"]
"""Byte orders a `Field` takes."""

__all__ = [
    "ClientEvent",
    "EncodeError",
    "Field",
    "FieldError",
    "FieldValue",
    "FrameError",
    "ReadPlan",
    "Request",
    "RequestReceived",
    "RequestRejected",
    "Response",
    "ResponseReceived",
    "ResponseRejected",
    "RtuClientCodec",
    "RtuServerCodec",
    "ServerEvent",
    "TcpClientCodec",
    "TcpServerCodec",
    "ValueType",
    "WordOrder",
]
