"""Every exception hubgate raises, in one namespace."""

from hubgate._core import (
    CodecError,
    CrcError,
    EncodeError,
    FieldError,
    FrameError,
    HubgateError,
)

__all__ = ["CodecError", "CrcError", "EncodeError", "FieldError", "FrameError", "HubgateError"]
