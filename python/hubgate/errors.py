"""Every exception hubgate raises, in one namespace."""

from hubgate._core import CodecError, CrcError, HubgateError

__all__ = ["CodecError", "CrcError", "HubgateError"]
