"""Every exception hubgate raises, in one namespace."""

from hubgate._core import AllocationInputError, CodecError, CrcError, HubgateError, TopologyError

__all__ = ["AllocationInputError", "CodecError", "CrcError", "HubgateError", "TopologyError"]
