"""Type stubs for the Rust extension `hubgate._core` (built from `rust/py`)."""

__version__: str

class HubgateError(Exception):
    """Base of every error raised by hubgate's Rust core."""

class CodecError(HubgateError, ValueError):
    """Bytes that do not form a valid frame, or a value that cannot be encoded."""

class CrcError(CodecError):
    """An RTU frame whose CRC does not match its content."""

def crc16(data: bytes) -> int:
    """CRC-16/MODBUS of `data`."""

def check_crc(frame: bytes) -> None:
    """Check the trailing CRC (low byte first) of a whole RTU frame; raise `CrcError`."""
