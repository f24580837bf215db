"""Every exception hubgate raises, in one namespace."""

from hubgate._core import (
    AllocationInputError,
    CodecError,
    CrcError,
    EncodeError,
    FieldError,
    FrameError,
    HubgateError,
    PlanInputError,
    TopologyError,
)
from hubgate.cloud.queue import CsmsCallError
from hubgate.modbus.errors import (
    ModbusBadResponseError,
    ModbusConnectionError,
    ModbusError,
    ModbusExceptionError,
    ModbusTimeoutError,
)
from hubgate.ocpp.errors import (
    OcppCallError,
    OcppCallTimeoutError,
    OcppSessionClosedError,
    RpcError,
)

__all__ = [
    "AllocationInputError",
    "CodecError",
    "CrcError",
    "CsmsCallError",
    "EncodeError",
    "FieldError",
    "FrameError",
    "HubgateError",
    "ModbusBadResponseError",
    "ModbusConnectionError",
    "ModbusError",
    "ModbusExceptionError",
    "ModbusTimeoutError",
    "OcppCallError",
    "OcppCallTimeoutError",
    "OcppSessionClosedError",
    "PlanInputError",
    "RpcError",
    "TopologyError",
]
