"""What a Modbus request can end in besides a response: timeouts, lost links, exceptions.

Every error is a `HubgateError`, so the command line reports it with exit code 1.
"""

from __future__ import annotations

from enum import IntEnum

from hubgate._core import HubgateError


class ExceptionCode(IntEnum):
    """Modbus exception codes (MODBUS Application Protocol V1.1b3 §7)."""

    ILLEGAL_FUNCTION = 0x01
    ILLEGAL_DATA_ADDRESS = 0x02
    ILLEGAL_DATA_VALUE = 0x03
    SERVER_DEVICE_FAILURE = 0x04
    ACKNOWLEDGE = 0x05
    SERVER_DEVICE_BUSY = 0x06
    NEGATIVE_ACKNOWLEDGE = 0x07
    MEMORY_PARITY_ERROR = 0x08
    GATEWAY_PATH_UNAVAILABLE = 0x0A
    GATEWAY_TARGET_FAILED = 0x0B

    @property
    def title(self) -> str:
        """The name as the specification spells it, e.g. "Illegal Data Address"."""
        return self.name.replace("_", " ").title()


def exception_title(code: int) -> str:
    """The specification's name of exception `code`, or "Unknown Exception"."""
    try:
        return ExceptionCode(code).title
    except ValueError:
        return "Unknown Exception"


class ModbusError(HubgateError):
    """A Modbus request that did not get a normal response."""


class ModbusTimeoutError(ModbusError, TimeoutError):
    """No response before the request's deadline."""


class ModbusConnectionError(ModbusError, ConnectionError):
    """The device could not be reached, or the link broke while waiting."""


class ModbusBadResponseError(ModbusError):
    """A frame arrived in place of the response but does not answer the request."""


class ModbusExceptionError(ModbusError):
    """The device answered with a Modbus exception response."""

    def __init__(self, device: str, function: int, code: int) -> None:
        self.function = function
        self.code = code
        super().__init__(
            f"{device} answered function {function} with exception {code} ({exception_title(code)})"
        )


RETRIED = (ModbusTimeoutError, ModbusConnectionError, ModbusBadResponseError)
"""The errors a master's retries may cure; an exception response is the device's answer."""
