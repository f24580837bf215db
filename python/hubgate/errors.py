"""Every exception hubgate raises, in one namespace (`tests/test_errors.py` checks that
none is missing).

Each package raises its own subclasses of `HubgateError` and takes the base from
`hubgate._core`; nothing inside hubgate imports this module. Errors that are also
built-in kinds subclass them too: bad input is a `ValueError`, a timeout a
`TimeoutError`, a lost link a `ConnectionError`.
"""

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
from hubgate.cloud.errors import CsmsCallError
from hubgate.cloud.mqtt.packets import MqttProtocolError
from hubgate.cluster.link import ClusterUnavailableError
from hubgate.control.commands import CommandRejectedError
from hubgate.devices.errors import (
    DeviceError,
    FailsafeNotAppliedError,
    NotReadyError,
    SunSpecDiscoveryError,
)
from hubgate.fencing import FencedError
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
from hubgate.tomlcheck.problems import ConfigError

__all__ = [
    "AllocationInputError",
    "ClusterUnavailableError",
    "CodecError",
    "CommandRejectedError",
    "ConfigError",
    "CrcError",
    "CsmsCallError",
    "DeviceError",
    "EncodeError",
    "FailsafeNotAppliedError",
    "FencedError",
    "FieldError",
    "FrameError",
    "HubgateError",
    "ModbusBadResponseError",
    "ModbusConnectionError",
    "ModbusError",
    "ModbusExceptionError",
    "ModbusTimeoutError",
    "MqttProtocolError",
    "NotReadyError",
    "OcppCallError",
    "OcppCallTimeoutError",
    "OcppSessionClosedError",
    "PlanInputError",
    "RpcError",
    "SunSpecDiscoveryError",
    "TopologyError",
]
