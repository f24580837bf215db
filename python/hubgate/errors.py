"""Every exception hubgate raises, in one namespace."""

from hubgate._core import CodecError, CrcError, EncodeError, FieldError, FrameError, HubgateError
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

__all__ = ["CodecError", "CrcError", "HubgateError"]
__all__ += ["CsmsCallError"]
__all__ += ["OcppCallError", "OcppCallTimeoutError", "OcppSessionClosedError", "RpcError"]
__all__ += ["EncodeError", "FieldError", "FrameError"]
__all__ += [
    "ModbusBadResponseError",
    "ModbusConnectionError",
    "ModbusError",
    "ModbusExceptionError",
    "ModbusTimeoutError",
]
