"""Type stubs for the Rust extension `hubgate._core` (built from `rust/py`)."""

from array import array
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, Literal, Self, final

from typing_extensions import Buffer, disjoint_base

from hubgate.modbus.codec import ClientEvent as _ClientEvent
from hubgate.modbus.codec import FieldValue as _FieldValue
from hubgate.modbus.codec import ServerEvent as _ServerEvent
from hubgate.modbus.codec import ValueType as _ValueType
from hubgate.modbus.codec import WordOrder as _WordOrder

__all__ = [
    "AllocConnector",
    "AllocNode",
    "AllocReason",
    "AllocSettings",
    "Allocation",
    "AllocationInputError",
    "Allocator",
    "BriefWait",
    "CodecError",
    "ConnectorPaths",
    "CrcError",
    "DeadlinePlan",
    "DeadlinePlanner",
    "EncodeError",
    "Field",
    "FieldError",
    "FrameError",
    "HubgateError",
    "OcppCallReader",
    "PlanExchange",
    "PlanGroup",
    "PlanInputError",
    "ReadPlan",
    "Request",
    "RequestReceived",
    "RequestRejected",
    "RequestStats",
    "Response",
    "ResponseReceived",
    "ResponseRejected",
    "RtuClientCodec",
    "RtuServerCodec",
    "TcpClientCodec",
    "TcpServerCodec",
    "TopologyError",
    "TrioRun",
    "Turn",
    "WebSocketDecoder",
    "__version__",
    "check_crc",
    "crc16",
    "encode_websocket_close",
    "encode_websocket_frame",
    "mark_pass",
]

__version__: str

class HubgateError(Exception):
    """Base of every error raised by hubgate's Rust core."""

class CodecError(HubgateError, ValueError):
    """Bytes that do not form a valid frame, or a value that cannot be encoded.

    Also raised for an integer argument that does not fit its register, address, unit or
    count (e.g. `Request.ReadHoldingRegisters(70000, 1)`), where Python would see
    `OverflowError`: the message names the value and the range.
    """

class CrcError(CodecError):
    """An RTU frame whose CRC does not match its content."""

def crc16(data: bytes) -> int:
    """CRC-16/MODBUS of `data`."""

def check_crc(frame: bytes) -> None:
    """Check the trailing CRC (low byte first) of a whole RTU frame; raise `CrcError`."""

# --- Modbus codec (rust/py/src/modbus_*.rs) ---------------------------------

class FrameError(CodecError):
    """A Modbus TCP header that makes the rest of the stream meaningless: close it."""

class EncodeError(CodecError):
    """A Modbus request or response outside the specification's limits."""

class FieldError(CodecError):
    """A register field, value or read plan that does not make sense."""

@disjoint_base
class Request:
    """A Modbus request PDU: construct one of the nested variants.

    Variants are frozen, compare by value and support `match` by keyword.
    Limits are checked when encoding (raising `EncodeError`), not here; an integer that
    does not fit its field at all (an address above 65535) raises `CodecError` here.
    """

    @property
    def function_code(self) -> int:
        """The function code."""

    @final
    class ReadCoils(Request):
        """FC1: read `count` (1-2000) coils."""

        __match_args__ = ("address", "count")
        def __new__(cls, address: int, count: int) -> Self: ...
        @property
        def address(self) -> int: ...
        @property
        def count(self) -> int: ...

    @final
    class ReadDiscreteInputs(Request):
        """FC2: read `count` (1-2000) discrete inputs."""

        __match_args__ = ("address", "count")
        def __new__(cls, address: int, count: int) -> Self: ...
        @property
        def address(self) -> int: ...
        @property
        def count(self) -> int: ...

    @final
    class ReadHoldingRegisters(Request):
        """FC3: read `count` (1-125) holding registers."""

        __match_args__ = ("address", "count")
        def __new__(cls, address: int, count: int) -> Self: ...
        @property
        def address(self) -> int: ...
        @property
        def count(self) -> int: ...

    @final
    class ReadInputRegisters(Request):
        """FC4: read `count` (1-125) input registers."""

        __match_args__ = ("address", "count")
        def __new__(cls, address: int, count: int) -> Self: ...
        @property
        def address(self) -> int: ...
        @property
        def count(self) -> int: ...

    @final
    class WriteSingleCoil(Request):
        """FC5: switch one coil."""

        __match_args__ = ("address", "value")
        def __new__(cls, address: int, value: bool) -> Self: ...
        @property
        def address(self) -> int: ...
        @property
        def value(self) -> bool: ...

    @final
    class WriteSingleRegister(Request):
        """FC6: write one register."""

        __match_args__ = ("address", "value")
        def __new__(cls, address: int, value: int) -> Self: ...
        @property
        def address(self) -> int: ...
        @property
        def value(self) -> int: ...

    @final
    class WriteMultipleCoils(Request):
        """FC15: write 1-1968 coils."""

        __match_args__ = ("address", "values")
        def __new__(cls, address: int, values: Sequence[bool]) -> Self: ...
        @property
        def address(self) -> int: ...
        @property
        def values(self) -> list[bool]: ...

    @final
    class WriteMultipleRegisters(Request):
        """FC16: write 1-123 registers."""

        __match_args__ = ("address", "values")
        def __new__(cls, address: int, values: Sequence[int]) -> Self: ...
        @property
        def address(self) -> int: ...
        @property
        def values(self) -> list[int]: ...

    @final
    class ReadWriteMultipleRegisters(Request):
        """FC23: write 1-121 registers, then read 1-125."""

        __match_args__ = ("read_address", "read_count", "write_address", "values")
        def __new__(
            cls, read_address: int, read_count: int, write_address: int, values: Sequence[int]
        ) -> Self: ...
        @property
        def read_address(self) -> int: ...
        @property
        def read_count(self) -> int: ...
        @property
        def write_address(self) -> int: ...
        @property
        def values(self) -> list[int]: ...

    @final
    class ReadDeviceIdentification(Request):
        """FC43/14: read device identification (read code 1-4 from `object_id`; 1 and 0
        for the basic objects)."""

        __match_args__ = ("read_code", "object_id")
        def __new__(cls, read_code: int, object_id: int) -> Self: ...
        @property
        def read_code(self) -> int: ...
        @property
        def object_id(self) -> int: ...

@disjoint_base
class Response:
    """A Modbus response PDU, including exception responses: nested variants.

    Variants are frozen, compare by value and support `match` by keyword.
    """

    @property
    def function_code(self) -> int:
        """Function code of the request this answers (without the exception flag)."""

    @property
    def is_exception(self) -> bool:
        """Whether this is `Response.Exception`."""

    @final
    class ReadCoils(Response):
        """FC1: coil states, cut to the requested count once matched."""

        __match_args__ = ("bits",)
        def __new__(cls, bits: Sequence[bool]) -> Self: ...
        @property
        def bits(self) -> list[bool]: ...

    @final
    class ReadDiscreteInputs(Response):
        """FC2: input states, cut to the requested count once matched."""

        __match_args__ = ("bits",)
        def __new__(cls, bits: Sequence[bool]) -> Self: ...
        @property
        def bits(self) -> list[bool]: ...

    @final
    class ReadHoldingRegisters(Response):
        """FC3: the registers read."""

        __match_args__ = ("registers",)
        def __new__(cls, registers: Sequence[int]) -> Self: ...
        @property
        def registers(self) -> list[int]: ...

    @final
    class ReadInputRegisters(Response):
        """FC4: the registers read."""

        __match_args__ = ("registers",)
        def __new__(cls, registers: Sequence[int]) -> Self: ...
        @property
        def registers(self) -> list[int]: ...

    @final
    class WriteSingleCoil(Response):
        """FC5: echo of the request."""

        __match_args__ = ("address", "value")
        def __new__(cls, address: int, value: bool) -> Self: ...
        @property
        def address(self) -> int: ...
        @property
        def value(self) -> bool: ...

    @final
    class WriteSingleRegister(Response):
        """FC6: echo of the request."""

        __match_args__ = ("address", "value")
        def __new__(cls, address: int, value: int) -> Self: ...
        @property
        def address(self) -> int: ...
        @property
        def value(self) -> int: ...

    @final
    class WriteMultipleCoils(Response):
        """FC15: first coil and number of coils written."""

        __match_args__ = ("address", "count")
        def __new__(cls, address: int, count: int) -> Self: ...
        @property
        def address(self) -> int: ...
        @property
        def count(self) -> int: ...

    @final
    class WriteMultipleRegisters(Response):
        """FC16: first register and number of registers written."""

        __match_args__ = ("address", "count")
        def __new__(cls, address: int, count: int) -> Self: ...
        @property
        def address(self) -> int: ...
        @property
        def count(self) -> int: ...

    @final
    class ReadWriteMultipleRegisters(Response):
        """FC23: the registers read."""

        __match_args__ = ("registers",)
        def __new__(cls, registers: Sequence[int]) -> Self: ...
        @property
        def registers(self) -> list[int]: ...

    @final
    class ReadDeviceIdentification(Response):
        """FC43/14: device identification objects as `(object_id, value)` pairs."""

        __match_args__ = ("read_code", "conformity", "more_follows", "next_object_id", "objects")
        def __new__(
            cls,
            read_code: int,
            conformity: int,
            more_follows: bool,
            next_object_id: int,
            objects: Sequence[tuple[int, bytes]],
        ) -> Self: ...
        @property
        def read_code(self) -> int: ...
        @property
        def conformity(self) -> int: ...
        @property
        def more_follows(self) -> bool: ...
        @property
        def next_object_id(self) -> int: ...
        @property
        def objects(self) -> list[tuple[int, bytes]]: ...

    @final
    class Exception(Response):
        """An exception response to `function` (without the 0x80 flag) with `code`."""

        __match_args__ = ("function", "code")
        def __new__(cls, function: int, code: int) -> Self: ...
        @property
        def function(self) -> int: ...
        @property
        def code(self) -> int: ...

@final
class ResponseReceived:
    """A response matched to its request, which is no longer pending."""

    @property
    def transaction_id(self) -> int: ...
    @property
    def unit(self) -> int: ...
    @property
    def response(self) -> Response: ...

@final
class ResponseRejected:
    """A frame answering no pending request; a set `transaction_id` is finished (failed)."""

    @property
    def transaction_id(self) -> int | None: ...
    @property
    def unit(self) -> int: ...
    @property
    def reason(self) -> str: ...

@final
class RequestReceived:
    """A well-formed request received by a server."""

    @property
    def transaction_id(self) -> int: ...
    @property
    def unit(self) -> int: ...
    @property
    def request(self) -> Request: ...

@final
class RequestRejected:
    """A request that does not decode: answer `exception_code` for `function_code`."""

    @property
    def transaction_id(self) -> int: ...
    @property
    def unit(self) -> int: ...
    @property
    def function_code(self) -> int: ...
    @property
    def exception_code(self) -> int: ...
    @property
    def reason(self) -> str: ...

@final
class TcpClientCodec:
    """Modbus TCP client codec: requests in flight matched by transaction id, unit and function."""

    def __new__(cls) -> Self: ...
    def encode_request(self, unit: int, request: Request) -> tuple[int, bytes]:
        """Encode `request` for `unit`; return `(transaction_id, frame)`; raise `EncodeError`."""
    def receive_data(self, data: Buffer) -> None:
        """Append received bytes."""
    def next_event(self) -> _ClientEvent | None:
        """Next event, `None` when more bytes are needed; raise `FrameError` on a bad header."""
    def forget(self, transaction_id: int) -> bool:
        """Stop waiting for a transaction (timeout); return whether it was pending."""
    @property
    def pending(self) -> int:
        """Number of requests waiting for a response."""

@final
class PlanExchange:
    """The requests of one `ReadPlan` to one unit over a `TcpClientCodec`, at most `window`
    in flight: frames encoded, responses matched and every field decoded in Rust; or one
    request (`request`), whose outcome is its `Response` where a plan's is its values."""

    def __new__(cls, unit: int, plan: ReadPlan, window: int) -> Self:
        """Raise `EncodeError` when a request of `plan` breaks a specification limit."""
    @staticmethod
    def request(unit: int, request: Request) -> PlanExchange:
        """One `request` to `unit` (a write's exchange); raise `EncodeError` when it breaks
        a specification limit."""
    def start(self, codec: TcpClientCodec) -> bytes | list[_FieldValue]:
        """The first frames to send, or the fields' values for a plan without requests."""
    def receive(
        self, codec: TcpClientCodec, data: Buffer
    ) -> bytes | list[_FieldValue] | Response | ResponseRejected | None:
        """Feed received bytes: `None` (wait), `bytes` (send, then wait), the field values
        (done), a `Response.Exception` or a `ResponseRejected` (failed, nothing pending);
        raise `FrameError` on a bad header (close the connection)."""
    def drive(
        self,
        codec: TcpClientCodec,
        fd: int,
        readable: BriefWait,
        timeout_s: float,
        chain: bool,
    ) -> list[_FieldValue] | Response | ResponseRejected | bytes | bool | None:
        """Drive the plan over the connected, non-blocking socket `fd` without the event
        loop, in brief blocks while `readable`'s rules allow (the Trio run's facts read
        once): send the frames due, take what arrives, send what the answers let out (only
        when `chain`); each round trip times out `timeout_s` after its frames went out.
        Returns as `receive` once the plan ended; `None` while an answer is awaited (wait
        the Trio way until readable or `deadline`, then call again); `True` when frames
        fell due and not `chain` (call again to send them); `b""` when the device closed
        the connection. Raise `OSError` and `FrameError` (close the connection)."""
    def abandon(self, codec: TcpClientCodec) -> None:
        """Stop waiting for the unanswered requests (timeout)."""
    @property
    def strays(self) -> int:
        """Frames received that answered none of the plan's requests."""
    @property
    def window(self) -> int:
        """Requests in flight at most."""
    @property
    def answered(self) -> int:
        """Requests answered so far."""
    @property
    def rounds(self) -> int:
        """Sends made so far."""
    @property
    def started(self) -> float:
        """Trio's clock when `drive` was first called."""
    @property
    def deadline(self) -> float:
        """When the round trip in flight times out (Trio's clock; `drive`)."""
    @property
    def ended(self) -> float:
        """Trio's clock when `drive` last returned (or as set: when the plan was given up)."""
    @ended.setter
    def ended(self, value: float) -> None: ...

@final
class TrioRun:
    """Where the brief blocks read the Trio run's facts: its runner, or the public calls
    where the runner is not as expected (`hubgate.modbus.readiness`)."""

    def __new__(
        cls,
        context: object | None,
        system_clock: type | None,
        public: Callable[[], tuple[float, float, bool, int]],
    ) -> Self:
        """`context`: Trio's per-thread run state (None: the public calls alone),
        `system_clock` its `SystemClock` type; `public()` reads the facts publicly."""
    def facts(self) -> tuple[float, float, bool, int]:
        """(Trio's clock, the run's first deadline, this task cancelled, tasks runnable)."""

@disjoint_base
class BriefWait:
    """The brief block's state of one socket (`hubgate.modbus.readiness.Readable`)."""

    SLICE_S: ClassVar[float]
    answer_s: float
    def __new__(cls, fd: int, run: TrioRun) -> Self:
        """Brief blocks on `fd`, the run's facts read as `run` says."""
    @property
    def fd(self) -> int:
        """The file descriptor waited for."""
    @property
    def brief_answers(self) -> int:
        """Waits that ended in a brief block, without Trio's scheduler."""
    @property
    def miss_rate(self) -> float:
        """The share of recent brief blocks that ended without an answer."""
    @property
    def block_s(self) -> float:
        """How long one brief block waits at most."""
    def window(self, deadline: float, now: float) -> float | None:
        """How long brief blocks may wait from `now`: None when the wait is Trio's to make,
        0.0 when `deadline` passed."""
    def briefly(self, deadline: float) -> bool | None:
        """A brief block: True once readable, False once `deadline` passed, None when the
        wait is Trio's to make."""
    def caught(self, seconds: float) -> None:
        """A brief block caught the answer after `seconds`."""
    def miss(self) -> None:
        """A brief block ended without an answer: Trio's wait follows."""
    def take_missed(self) -> bool:
        """Whether the last brief block missed; cleared."""

def mark_pass() -> float:
    """Mark a pass through Trio's scheduler now; returns the time (`time.perf_counter`)."""

@final
class PlanGroup:
    """Read plans in flight over many sockets, driven from one task: the sockets in one
    private `epoll` set, one `step` per wake (`hubgate.modbus.plan_group`)."""

    def __new__(cls) -> Self:
        """Raise `OSError` when no `epoll` set can be made (out of descriptors)."""
    def add(
        self,
        index: int,
        unit: int,
        plan: ReadPlan,
        window: int,
        codec: TcpClientCodec,
        fd: int,
        now: float,
        timeout_s: float,
        delay_s: float,
        turn: Turn,
        stats: RequestStats,
        clean: bool,
        check: Callable[[], object] | None,
    ) -> tuple[int, PlanExchange | None, Any, float] | None:
        """Start `plan` to `unit` (`window` of its requests at a time) over the connected,
        non-blocking socket `fd` of the connection with `codec` and `turn` (taken) at `now`
        (Trio's clock; its first frames once the connection has been quiet for `delay_s`),
        each round trip answered within `timeout_s`, `check()` called before frames go out
        when given; one that ends with its values while `clean` and nobody waits for the
        turn is counted in `stats` and its turn ended in Rust. `None` while in flight, else
        what `step` hands over. Raise `EncodeError` for a plan the codec refuses."""
    def step(self, now: float) -> list[tuple[int, PlanExchange | None, Any, float]]:
        """Take what every socket in flight holds, send what the answers let out, time out
        the round trips past their deadline and send the frames whose pause ended (at
        `now`). Returns the plans that ended, each `(index, exchange, value, started)`:
        `exchange` None when it ended with its values (`value`) counted and its turn ended;
        else `value` as `PlanExchange.receive` once ended, `b""` (closed by the device), the
        `Exception` that ended it (`OSError`, `FrameError`, what `check` raised) or `None`
        (timed out)."""
    def give_up(self) -> list[tuple[int, PlanExchange, float]]:
        """End every plan still in flight: each `(index, exchange, started)`."""
    @property
    def next_deadline(self) -> float:
        """When the first plan in flight is due (`step`); `inf` when none is."""
    @property
    def live(self) -> int:
        """Plans in flight."""
    def fileno(self) -> int:
        """The `epoll` set's descriptor (readable once a socket in flight is)."""
    def close(self) -> None:
        """Close the `epoll` set; plans in flight are dropped (`give_up` first)."""

@final
class Turn:
    """A Modbus TCP connection's turn (`hubgate.modbus.tcp_master`), shared with the
    `PlanGroup` that ends a plan's turn in Rust."""

    def __new__(cls) -> Self: ...
    busy: bool
    """The connection is in use."""
    quiet_since: float
    """When its last exchange ended (Trio's clock)."""
    waiting: int
    """Callers waiting for it (counted by the caller around its wait)."""
    strays: int
    """Frames that answered no pending request."""

@final
class RequestStats:
    """Counters and latency quantiles of one device (or one connection):
    `hubgate.modbus.stats`."""

    def __new__(cls) -> Self: ...
    @property
    def requests(self) -> int: ...
    @property
    def ok(self) -> int: ...
    @property
    def timeouts(self) -> int: ...
    @property
    def exceptions(self) -> int:
        """Answered with an error: a Modbus exception response, an OCPP CallError."""
    @property
    def errors(self) -> int: ...
    @property
    def latency_sum_s(self) -> float: ...
    def record_ok(self, latency_s: float, requests: int = 1) -> None:
        """`requests` requests answered normally, each after `latency_s`."""
    def record_exception(self, latency_s: float) -> None:
        """A request answered with an error (Modbus exception response, OCPP CallError)."""
    def record_timeout(self) -> None:
        """A request that got no answer before its deadline."""
    def record_error(self) -> None:
        """A request that failed otherwise (connection lost, bad frame)."""
    def percentile_s(self, fraction: float) -> float | None:
        """The `fraction` quantile of the answers' latency (s); None without answers."""

@final
class RtuClientCodec:
    """Modbus RTU client codec (serial or RTU over TCP): one request at a time."""

    def __new__(cls) -> Self: ...
    def encode_request(self, unit: int, request: Request) -> tuple[int, bytes]:
        """Encode `request` for `unit`, replacing any pending one; raise `EncodeError`."""
    def receive_data(self, data: Buffer) -> None:
        """Append received bytes."""
    def next_event(self) -> _ClientEvent | None:
        """Next event, `None` when more bytes are needed."""
    def reset(self) -> bool:
        """Stop waiting (timeout) and drop buffered bytes; return whether a request was pending."""
    @property
    def pending(self) -> int:
        """Number of requests waiting for a response (0 or 1)."""
    @property
    def discarded(self) -> int:
        """Bytes dropped so far while resynchronising."""

@final
class TcpServerCodec:
    """Modbus TCP server codec for one connection."""

    def __new__(cls) -> Self: ...
    def receive_data(self, data: Buffer) -> None:
        """Append received bytes."""
    def next_event(self) -> _ServerEvent | None:
        """Next event, `None` when more bytes are needed; raise `FrameError` on a bad header."""
    @staticmethod
    def encode_response(transaction_id: int, unit: int, response: Response) -> bytes:
        """Encode a response frame; raise `EncodeError`."""
    @staticmethod
    def encode_exception(
        transaction_id: int, unit: int, function_code: int, exception_code: int
    ) -> bytes:
        """Encode an exception response frame."""

@final
class RtuServerCodec:
    """Modbus RTU server codec; answers every unit; transaction ids are 0 and ignored."""

    def __new__(cls) -> Self: ...
    def receive_data(self, data: Buffer) -> None:
        """Append received bytes."""
    def next_event(self) -> _ServerEvent | None:
        """Next event, `None` when more bytes are needed; bad-CRC frames are dropped."""
    @property
    def discarded(self) -> int:
        """Bytes dropped so far while resynchronising."""
    @staticmethod
    def encode_response(transaction_id: int, unit: int, response: Response) -> bytes:
        """Encode a response frame; raise `EncodeError`."""
    @staticmethod
    def encode_exception(
        transaction_id: int, unit: int, function_code: int, exception_code: int
    ) -> bytes:
        """Encode an exception response frame."""

@final
class Field:
    """One typed value in registers (FC3/FC4) or one bit (FC1/FC2): where it is, how it decodes.

    value = ((raw >> shift) & mask) * scale * 10**exponent + offset, where the exponent is
    the i16 register at `scale_factor` (SunSpec; read with the same function, 0x8000 makes
    the value missing). `count` is the number of registers of a `string` (required) or a
    `bitfield` (1-4). `sentinel`: `True` for the type's standard "not available" marker
    (0xFFFF, 0x8000, 0xFFFFFFFF, 0x80000000, all ones, NaN, all-NUL string), raw values
    (an int or a sequence), or `None`. Integers decode to `int` unless scale, offset or an
    exponent apply, then to `float`; bits decode to `bool` (flipped by `invert`).
    """

    def __new__(
        cls,
        address: int,
        type: _ValueType = "u16",
        *,
        function: Literal[1, 2, 3, 4] = 3,
        count: int | None = None,
        order: _WordOrder = "ABCD",
        scale: float = 1.0,
        offset: float = 0.0,
        sentinel: bool | int | Sequence[int] | None = None,
        mask: int | None = None,
        shift: int = 0,
        scale_factor: int | None = None,
        invert: bool = False,
        charset: Literal["utf-8", "utf-16-be"] = "utf-8",
    ) -> Self: ...
    @property
    def address(self) -> int: ...
    @property
    def count(self) -> int:
        """Number of registers (or bits) the value occupies."""
    @property
    def function(self) -> int: ...
    @property
    def scale_factor(self) -> int | None:
        """Address of the scale-factor register, if any."""
    def decode(
        self, registers: Response | Sequence[int] | Sequence[bool], *, exponent: int | None = None
    ) -> _FieldValue:
        """Decode exactly this field's registers (or bit); a scale-factor field needs `exponent`."""
    def encode(self, value: int | float | bool | str, *, exponent: int | None = None) -> list[int]:
        """Registers holding `value` (scale, offset and exponent undone); a bit gives [0] or [1]."""

@final
class ReadPlan:
    """Fields compiled into the fewest read requests; decodes all fields in one call."""

    def __new__(
        cls,
        fields: Sequence[Field],
        *,
        max_gap: int = 0,
        max_block: int = 125,
        forbidden: Sequence[tuple[int, int]] = ...,
        single_register: bool = False,
    ) -> Self: ...
    @property
    def requests(self) -> list[Request]:
        """The read requests, in the order `decode` takes their responses."""
    def __len__(self) -> int: ...
    def decode(
        self, responses: Iterable[Response | Sequence[int] | Sequence[bool] | None]
    ) -> list[_FieldValue]:
        """Every field's value in the given order; `None` for a sentinel or a failed read."""

class TopologyError(HubgateError, ValueError):
    """A site tree or connector set the allocator cannot work on.

    Also raised for a node or connector index, phase or priority that does not fit its
    integer type at all (a negative index), where Python would see `OverflowError`.
    """

class AllocationInputError(HubgateError, ValueError):
    """A cycle's measurements the allocator cannot use; its state is unchanged."""

class PlanInputError(HubgateError, ValueError):
    """A deadline plan's slots or sessions that cannot be used."""

@final
class AllocReason:
    """Why a connector got its setpoint (codes as in `Allocation.reason`)."""

    NOT_WANTING: ClassVar[AllocReason]
    OWN_MAXIMUM: ClassVar[AllocReason]
    PHASE_CURRENT: ClassVar[AllocReason]
    POWER: ClassVar[AllocReason]
    UNBALANCE: ClassVar[AllocReason]
    GRID_OPERATOR: ClassVar[AllocReason]
    PEAK_TARGET: ClassVar[AllocReason]
    PV_BUDGET: ClassVar[AllocReason]
    PAUSED_NO_CAPACITY: ClassVar[AllocReason]
    PAUSED_MIN_OFF: ClassVar[AllocReason]
    RAMPING: ClassVar[AllocReason]
    CHANGE_INTERVAL: ClassVar[AllocReason]
    AWAITING_HEADROOM: ClassVar[AllocReason]
    def __int__(self) -> int: ...
    @staticmethod
    def members() -> list[AllocReason]:
        """Every reason, indexed by its code."""

@final
class AllocNode:
    """One node of the tree (index = position in the list given to `Allocator`)."""

    parent: int | None
    phase_cap_a: tuple[float, float, float]
    power_cap_w: float
    unbalance_cap_a: float
    def __new__(
        cls,
        parent: int | None,
        phase_cap_a: tuple[float, float, float],
        power_cap_w: float = ...,
        unbalance_cap_a: float = ...,
    ) -> AllocNode: ...

@final
class AllocConnector:
    """One connector: its node, grid phases ('1p', '3p', 'switchable'), limits and share.

    `phase` is the grid phase (0-2) it draws on when on one phase.
    """

    node: int
    phases: str
    phase: int
    min_a: float
    max_a: float
    step_a: float
    weight: float
    priority: int
    def __new__(
        cls,
        node: int,
        phases: str,
        phase: int,
        min_a: float,
        max_a: float,
        step_a: float = 0.1,
        weight: float = 1.0,
        priority: int = 0,
    ) -> AllocConnector: ...

@final
class AllocSettings:
    """Timing and policy settings (seconds, A/s, W)."""

    voltage_v: float
    min_on_s: float
    min_off_s: float
    change_interval_s: float
    ramp_a_per_s: float
    settle_s: float
    phase_switch_s: float
    max_phase_switches: int
    def __new__(
        cls,
        voltage_v: float = 230.0,
        min_on_s: float = 300.0,
        min_off_s: float = 120.0,
        change_interval_s: float = 5.0,
        ramp_a_per_s: float = ...,
        settle_s: float = 10.0,
        phase_switch_s: float = 600.0,
        max_phase_switches: int = 0,
    ) -> AllocSettings: ...

@final
class Allocation:
    """One cycle's result; each attribute is a new `array.array`, one entry per connector."""

    def __len__(self) -> int: ...
    @property
    def setpoint_a(self) -> array[float]:
        """Setpoints to send now, A per phase (0 = paused)."""
    @property
    def target_a(self) -> array[float]:
        """Fair targets before transition shaping, A per phase."""
    @property
    def fair_a(self) -> array[float]:
        """Exact weighted max-min fair shares before rounding, A per phase."""
    @property
    def phases(self) -> array[int]:
        """Phases drawn on, 1 or 3."""
    @property
    def reason(self) -> array[int]:
        """Reason codes: `AllocReason.members()[code]`."""
    @property
    def binding_node(self) -> array[int]:
        """Node index of the binding limit, or -1."""
    @property
    def binding_phase(self) -> array[int]:
        """Grid phase (0-2) of the binding limit, or -1."""

@final
class Allocator:
    """The allocator: topology and per-connector memory; call `allocate` every cycle."""

    def __new__(
        cls,
        nodes: Sequence[AllocNode],
        connectors: Sequence[AllocConnector],
        settings: AllocSettings | None = None,
    ) -> Allocator: ...
    @property
    def node_count(self) -> int: ...
    @property
    def connector_count(self) -> int: ...
    def priority(self, connector: int) -> int:
        """Priority tier of connector `connector`; `TopologyError` if there is none."""
    def set_priority(self, connector: int, priority: int) -> None:
        """Move `connector` to tier `priority` (0-255) from the next cycle; its state is kept.

        Raises `TopologyError` for a connector that does not exist.
        """
    def set_ev_phase(self, connector: int, phase: int | None) -> None:
        """Measurement shows the EV at three-phase `connector` draws on grid phase `phase`
        (0-2) alone, or on all three again (None): it counts there only from the next cycle
        on, its last setpoint too (nothing is paused for the change).

        Raises `TopologyError` for a connector that does not exist, is not built on three
        phases, or a phase out of range.
        """
    def confirm_draw(self, connector: int, drawn_a: float) -> None:
        """A reading after `connector`'s last decrease shows it draws at most `drawn_a` A per
        phase: what it keeps reserved for the EV to follow is lowered to that (never below its
        setpoint; a NaN says nothing).

        Raises `TopologyError` for a connector that does not exist.
        """
    def confirm_followed(self, connector: int) -> None:
        """Measurement shows `connector` follows its last setpoint: free its settle reservation.

        Raises `TopologyError` for a connector that does not exist.
        """
    def reserved_a(self, connector: int, now: float) -> float:
        """The current per phase (its largest phase) `connector` keeps reserved at `now` for
        its EV to follow a decrease (`settle_s`; lowered by `confirm_draw`, freed by
        `confirm_followed`); 0.0 for none.

        Raises `TopologyError` for a connector that does not exist.
        """
    def allocate(
        self,
        now: float,
        base_load_a: Buffer | Sequence[float],
        ev_max_a: Buffer | Sequence[float],
        wanting: Buffer | Sequence[bool] | Sequence[int],
        pv_mode: Buffer | Sequence[bool] | Sequence[int] | None = None,
        grid_operator_w: float = ...,
        peak_w: float = ...,
        pv_budget_w: float = ...,
        floor_a: Buffer | Sequence[float] | None = None,
        laxity_s: Buffer | Sequence[float] | None = None,
    ) -> Allocation:
        """Run one cycle.

        `base_load_a` has 3 values per node (L1, L2, L3, node by node); `ev_max_a`,
        `wanting`, `pv_mode`, `floor_a` (deadline floors, A per phase) and `laxity_s`
        one per connector. Raises `AllocationInputError`.
        """

@final
class DeadlinePlan:
    """One planning call's result; each attribute is a new `array('d')`, one entry per session."""

    def __len__(self) -> int: ...
    @property
    def now_w(self) -> array[float]:
        """Power each session must get while plugged in during the first slot, W."""
    @property
    def shortfall_wh(self) -> array[float]:
        """Energy no schedule delivers by the departure, Wh."""
    @property
    def laxity_s(self) -> array[float]:
        """Time to departure minus time needed at the maximum, s (inf: not planned)."""

@final
class DeadlinePlanner:
    """Plans sessions with deadlines over a horizon of slots (see `docs/allocation.md`)."""

    def __new__(cls) -> DeadlinePlanner: ...
    def plan(
        self,
        slot_s: Buffer | Sequence[float],
        cap_w: Buffer | Sequence[float],
        need_wh: Buffer | Sequence[float],
        departure_s: Buffer | Sequence[float],
        max_w: Buffer | Sequence[float],
    ) -> DeadlinePlan:
        """Plans every session; raises `PlanInputError` for unusable input."""

@final
class ConnectorPaths:
    """Each connector's path up the site's tree and its grid phases."""

    def __new__(
        cls, nodes: int, paths: Sequence[Sequence[int]], phases: Sequence[Sequence[int]]
    ) -> ConnectorPaths:
        """Per connector: its path of node indices (its own node first) in a tree of `nodes`
        nodes, and its grid phases (0-2), the one a one-phase setpoint draws on first; raises
        `TopologyError` for a node or phase the site does not have."""
    def __len__(self) -> int: ...
    def sum_setpoints(
        self,
        setpoint_a: Buffer | Sequence[float],
        phases: Buffer | Sequence[int],
        alone_on: Buffer | Sequence[int],
    ) -> array[float]:
        """Each connector's setpoint (`setpoint_a`) added up at every node on its path, on the
        grid phases it is drawn on: `alone_on`'s phase where that is 0-2 (a one-phase EV at a
        three-phase connector; -1: none), else its first phase when it is set on one phase
        (`phases`), else all of its phases; three values per node. Raises
        `AllocationInputError` for columns of the wrong length, `TopologyError` for a phase
        past 2."""
    def sum_up(self, per_connector: Sequence[tuple[float, float, float]]) -> array[float]:
        """Each connector's (L1, L2, L3) currents added up at every node on its path, in
        connector order: three values per node. Raises `AllocationInputError` when there
        is not one triple per connector."""
    def share_failsafe(
        self,
        fixed_a: Buffer | Sequence[float],
        session: Buffer | Sequence[bool],
        holds: Buffer | Sequence[bool],
        may_hold_a: Buffer | Sequence[float],
        room_a: Buffer | Sequence[float],
        failsafe_a: float,
    ) -> array[float]:
        """The failsafe budget (`hubgate_core::failsafe`): per connector, the failsafe current
        it is to be configured with, its fixed one (`fixed_a`, NaN: none), else `failsafe_a`
        or 0: the fixed ones first (room or not), then those with a `session`, then those
        that `holds` it already (a new grant needs 1 A more room), then by index, each where
        every node on its path has room on its phases (`room_a`: 3 values per node); an
        increase over what it may fall back to now (`may_hold_a`: verified, or asked for
        since) only where that room is left beside what every other may fall back to now,
        else 0 until it is. Raises `AllocationInputError` for columns of the wrong length."""

@final
class OcppCallReader:
    """Reads an OCPP-J version's hot calls (MeterValues, StatusNotification, Heartbeat)
    from a frame's text in one call: parsed, the payload checked against the schema
    (the `jsonschema` crate, the engine of jsonschema-rs, formats checked) and the
    handler's fields taken out. Anything else, a call with any problem included, is None
    (never an error): the caller's general path handles it."""

    def __new__(cls, *, v16: bool) -> OcppCallReader: ...
    def add(self, action: str, schema: str) -> bool:
        """Reads `action` from now on, checked against `schema` (JSON Schema text; its
        `$id` is dropped); False for an action it does not read. `HubgateError` if the
        schema does not compile."""
    def read(
        self, text: str
    ) -> (
        tuple[
            str,
            str,
            tuple[int, str, str | None, str | None]
            | tuple[
                int,
                list[
                    tuple[
                        str,
                        tuple[float | None, float | None, float | None],
                        tuple[float | None, float | None, float | None],
                        float | None,
                        float | None,
                        float | None,
                        float | None,
                    ]
                ],
            ]
            | None,
        ]
        | None
    ):
        """`(unique_id, action, fields)` of a hot call with a valid payload, else None.
        Fields: a Heartbeat None; a StatusNotification (1.6 connectorId or 2.x evseId,
        status, 1.6 errorCode or None, timestamp or None); a MeterValues (connectorId or
        evseId, per meterValue (timestamp, current A per phase, voltage V per phase,
        power W, energy register Wh, SoC %, offered current A), None where not sent). A
        1.6 value that is not a plain decimal number makes the whole call None."""

@final
class WebSocketDecoder:
    """Decodes the frames a WebSocket client sends (RFC 6455: masking, fragments,
    control frames, close codes); `hubgate.ocpp.websocket` names the event kinds."""

    def __new__(cls, max_message_bytes: int, *, deflate: bool = False) -> WebSocketDecoder: ...
    def receive(self, data: Buffer) -> list[tuple[int, Any, int]]:
        """Feeds received bytes; returns the events they complete as `(kind, data, code)`:
        1 text (`str`), 2 binary, 0x41/0x42 a compressed text/binary message (`bytes`,
        still deflated), 8 close (`data` the reason, `code` its code, 1005 if none),
        9 ping and 10 pong (`bytes`), 0xFF the peer broke the protocol (`data` says how,
        `code` is the close code to send; nothing more is decoded), 0x80 a text message
        the reader given to `read_calls` read (`data` what `OcppCallReader.read` returns)."""
    def receive_from(self, fd: int) -> list[tuple[int, Any, int]] | None:
        """Reads what socket `fd` holds without waiting (up to 64 KiB) and returns the
        events as `receive`: empty when it holds nothing yet, None once the peer has
        closed the connection or it failed."""
    def inflated_text(self, data: bytes) -> tuple[int, Any, int]:
        """The event of a compressed text message once inflated (`data`), as `receive`
        gives an uncompressed one: 0x80 when the reader reads it, else 1 (text); 0xFF
        with close code 1007 when it is not UTF-8."""
    def read_calls(self, reader: OcppCallReader | None, max_bytes: int) -> None:
        """From now on an uncompressed text message of at most `max_bytes` that `reader`
        reads comes out as a 0x80 event with what it read (None: no reader)."""

def encode_websocket_frame(opcode: int, payload: str | Buffer, *, rsv1: bool = False) -> bytes:
    """One whole unmasked server frame carrying `payload` (text as UTF-8)."""

def encode_websocket_close(code: int, reason: str) -> bytes:
    """A close frame with `code` and `reason` (cut to fit 125 bytes)."""
